#!/usr/bin/env bash
# Bridged-call load: SIPp callers → acd → N registered agents (one SIPp UAS stands in for all of
# them) and back, measuring acd's CPU per call; then the same SIPp caller through Kamailio's
# stateful relay (benches/load/kamailio.cfg, a copy of shared/peers/kamailio) for comparison,
# in the same run.
#
# usage: benches/load/bridged_calls.sh [RATE=300] [CALLS=6000] [HOLD_MS=100]
# needs: sip-tester, kamailio, python3; run from anywhere. Loopback only.
set -euo pipefail
RATE=${1:-300}; CALLS=${2:-6000}; HOLD=${3:-100}; AGENTS=${AGENTS:-400}
AGENT_SCENARIO="$(cd "$(dirname "$0")/../.." && pwd)/benches/load/agent_uas.xml"
AGENT_FLAGS="-max_socket 65000"
echo "== acd: $AGENTS agents, $CALLS calls at $RATE/s, ${HOLD} ms talk"
. "$(dirname "$0")/common.sh"
trap 'kill $(jobs -p) 2>/dev/null || true; pkill -f "kamailio -f $work" 2>/dev/null || true' EXIT
t0=$(ticks $acd_pid); s0=$(date +%s.%N)
sipp 127.0.0.1:15060 -sf "$root/benches/load/caller_load.xml" -s 100 -i 127.0.0.1 -p 15090 -mp 17000 \
  -r "$RATE" -m "$CALLS" -d "$HOLD" -buff_size 4194304 -nostdin -timeout 300s > "$work/callers.log" 2>&1 || true
s1=$(date +%s.%N); t1=$(ticks $acd_pid)
status=$(status_json)
ok=$(grep -E "^ *Successful call" "$work/callers.log" | awk '{print $(NF)}' | tail -1)
failed=$(grep -E "^ *Failed call" "$work/callers.log" | awk '{print $(NF)}' | tail -1)
connected=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['status']['totals']['connected'])" "$status")
python3 -c "import json,sys; s=json.loads(sys.argv[1])['status']; print(f\"acd: {s.get('snapshots_taken', 0) / max(s['totals']['connected'], 1):.1f} call snapshots taken per call\")" "$status"
python3 - "$t0" "$t1" "$hz" "$CALLS" "$s0" "$s1" "$ok" "$failed" "$connected" <<'PY'
import sys
t0,t1,hz,calls,s0,s1,ok,failed,conn = sys.argv[1:]
cpu=(int(t1)-int(t0))/int(hz); wall=float(s1)-float(s0)
print(f"acd: {ok} ok / {failed} failed callers, {conn} bridged; wall {wall:.1f} s ({int(ok)/wall:.0f} calls/s)")
print(f"acd: CPU {cpu:.2f} s = {cpu/int(ok)*1e6:.0f} us per bridged call (caller leg + agent leg + media task)")
PY
kill $acd_pid; pkill -f "sipp -sf $root/benches/load/agent_uas.xml" || true
sleep 1

echo "== kamailio: same caller, stateful proxy (tm, record-routed: INVITE, ACK, BYE) to a SIPp UAS"
mkdir -p "$work/kam"
sipp -sf "$root/benches/load/agent_uas.xml" -i 127.0.0.1 -p 5070 -mp 16000 -nostdin \
  -buff_size 4194304 > "$work/kam-uas.log" 2>&1 &
# Record-Route on the relay path so ACK and BYE go through Kamailio too: the whole dialog is
# proxied statefully, as acd handles the whole call (both legs).
sed 's|\$du = "sip:127.0.0.1:5070";|record_route(); $du = "sip:127.0.0.1:5070";|' \
  "$root/benches/load/kamailio.cfg" > "$work/kamailio.cfg"
kamailio -f "$work/kamailio.cfg" -DD -E -m 1024 -M 16 -Y "$work/kam" > "$work/kam.log" 2>&1 &
sleep 2
kpids=$(pgrep -f "kamailio -f $work" | tr '\n' ' ')
kt() { local s=0; for p in $kpids; do s=$((s + $(ticks "$p"))); done; echo $s; }
k0=$(kt); s0=$(date +%s.%N)
sipp 127.0.0.1:5080 -sf "$root/benches/load/caller_load.xml" -s uas -i 127.0.0.1 -p 15091 -mp 17500 \
  -r "$RATE" -m "$CALLS" -d "$HOLD" -buff_size 4194304 -nostdin -timeout 300s > "$work/kcallers.log" 2>&1 || true
s1=$(date +%s.%N); k1=$(kt)
ok=$(grep -E "^ *Successful call" "$work/kcallers.log" | awk '{print $(NF)}' | tail -1)
python3 - "$k0" "$k1" "$hz" "$ok" "$s0" "$s1" <<'PY'
import sys
k0,k1,hz,ok,s0,s1 = sys.argv[1:]
cpu=(int(k1)-int(k0))/int(hz); wall=float(s1)-float(s0)
print(f"kamailio: {ok} ok callers; wall {wall:.1f} s; CPU {cpu:.2f} s = {cpu/max(int(ok),1)*1e6:.0f} us per proxied call")
PY
echo "logs in $work"
