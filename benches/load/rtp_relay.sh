#!/usr/bin/env bash
# RTP relay cost: CALLS bridged calls at once, each caller streaming SIPp's g711a.pcap (7 s of
# G.711 A-law, 30 ms packets) through acd to an agent that echoes it back through acd. Reports
# acd's CPU per RTP packet it forwarded or originated (relayed both ways + hold/prompt frames).
#
# usage: benches/load/rtp_relay.sh [CONCURRENT=200]
# needs: sip-tester, python3. Loopback only; stops by itself.
set -euo pipefail
CONC=${1:-200}; AGENTS=$((CONC + 20))
# The agents' phones answer with PCMA and echo every RTP packet back to where it came from.
AGENT_SCENARIO="$(cd "$(dirname "$0")/../.." && pwd)/tests/sipp/agent_answer.xml"
AGENT_FLAGS="-rtp_echo"
. "$(dirname "$0")/common.sh"
t0=$(ticks $acd_pid); s0=$(date +%s.%N)
if [ "${PERF:-0}" = 1 ]; then  # PERF=1: sample acd's stacks during the run (cpu-clock)
  perf record -e cpu-clock -F 999 -g -p "$acd_pid" -o "$work/perf.data" > /dev/null 2>&1 &
  perf_pid=$!
fi
sipp 127.0.0.1:15060 -sf "$root/tests/sipp/caller.xml" -s 100 -key caller +15551234567 -i 127.0.0.1 -p 15090 -mp 17000 \
  -r 50 -m $((CONC * 2)) -l "$CONC" -d 7000 -buff_size 4194304 -nostdin -timeout 300s \
  > "$work/callers.log" 2>&1 || true
s1=$(date +%s.%N); t1=$(ticks $acd_pid)
status=$(status_json)
ok=$(grep -E "^ *Successful call" "$work/callers.log" | awk '{print $(NF)}' | tail -1)
python3 - "$t0" "$t1" "$hz" "$s0" "$s1" "$ok" "$status" <<'PY'
import json, sys
t0, t1, hz, s0, s1, ok, status = sys.argv[1:]
st = json.loads(status)
m, tot = st["media"], st["status"]["totals"]
cpu = (int(t1) - int(t0)) / int(hz)
wall = float(s1) - float(s0)
pkts = m["relayed_to_agent"] + m["relayed_to_caller"] + m["prompt_frames"]
sig = int(ok) * 250e-6  # signalling per bridged call, from bridged_calls.sh
print(f"acd: {ok} calls ok, {tot['connected']} bridged, wall {wall:.1f} s")
print(f"acd: RTP packets relayed to agent {m['relayed_to_agent']}, to caller {m['relayed_to_caller']}, prompt frames {m['prompt_frames']}  ({pkts / wall:.0f} packets/s)")
print(f"acd: CPU {cpu:.2f} s; {cpu / pkts * 1e6:.2f} us per packet including signalling, "
      f"{max(cpu - sig, 0) / pkts * 1e6:.2f} us per packet with ~250 us/call of signalling taken out")
PY
if [ "${PERF:-0}" = 1 ]; then
  kill -INT "$perf_pid"; wait "$perf_pid" 2>/dev/null || true
  perf report -i "$work/perf.data" --stdio --no-children --sort symbol 2>/dev/null | grep -E "^ +[0-9]" | head -25
fi
echo "logs in $work"
