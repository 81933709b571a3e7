#!/usr/bin/env bash
# Overload control (issue 11 item 4): SIPp callers at the sustainable RATE for SECONDS, then at
# 2×RATE for SECONDS, against one acd with AGENTS agents (one SIPp UAS answers for them all).
# acd runs on CPU 0 and the SIPp processes on CPU 1, so acd, not the generator, saturates; with
# CPU_QUOTA (default 0.5) acd is also held to that share of its CPU by a cgroup (v1 `cpu` or v2),
# so that twice its sustainable rate is still a rate one SIPp core can offer.
# For each phase: calls offered, answered and completed (BYE answered), callers refused with
# 503 (each must carry Retry-After, or SIPp counts the call as failed), failed calls, and
# acd's shed counter from /metrics.
#
# usage: benches/load/overload.sh [RATE=800] [SECONDS=60] [HOLD_MS=100]
# needs: sip-tester, python3, curl, taskset (util-linux). Loopback only.
set -euo pipefail
RATE=${1:-800}; SECS=${2:-60}; HOLD=${3:-100}; AGENTS=${AGENTS:-600}; QUOTA=${CPU_QUOTA:-0.5}
AGENT_SCENARIO="$(cd "$(dirname "$0")/../.." && pwd)/benches/load/agent_uas.xml"
AGENT_FLAGS="-max_socket 65000"
ACD_WRAP="taskset -c 0"; SIPP_WRAP="taskset -c 1"
. "$(dirname "$0")/common.sh"
quota_us=$(python3 -c "print(int(float('$QUOTA') * 100000))")
if [ -d /sys/fs/cgroup/cpu ] && [ ! -f /sys/fs/cgroup/cgroup.controllers ]; then
  cg=/sys/fs/cgroup/cpu/acd-overload-$$; mkdir -p "$cg"
  echo 100000 > "$cg/cpu.cfs_period_us"; echo "$quota_us" > "$cg/cpu.cfs_quota_us"
else
  cg=/sys/fs/cgroup/acd-overload-$$; mkdir -p "$cg"; echo "$quota_us 100000" > "$cg/cpu.max"
fi
echo "$acd_pid" > "$cg/cgroup.procs"
echo "== acd held to $QUOTA of CPU 0 ($cg)"
token=""
metric() {
  [ -n "$token" ] || token=$(curl -s -X POST -H 'Content-Type: application/json' \
    -d '{"id":"loadadmin","password":"loadpw"}' 127.0.0.1:18080/api/login |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  curl -s -H "Authorization: Bearer $token" 127.0.0.1:18080/metrics | awk -v m="$1" '$1==m {print $2}'
}
phase() {
  local rate=$1 name=$2 calls=$(( $1 * SECS ))
  local shed0 t0 s0 s1 t1 shed1
  shed0=$(metric acd_sip_overload_shed_total); t0=$(ticks "$acd_pid"); s0=$(date +%s.%N)
  taskset -c 1 sipp 127.0.0.1:15060 -sf "$root/benches/load/caller_overload.xml" -s 100 -i 127.0.0.1 \
    -p $((15090 + ${#name})) -mp 17000 -r "$rate" -m "$calls" -d "$HOLD" -buff_size 4194304 \
    -nostdin -timeout $((SECS + 120))s > "$work/$name.log" 2>&1 || true
  s1=$(date +%s.%N); t1=$(ticks "$acd_pid"); shed1=$(metric acd_sip_overload_shed_total)
  python3 - "$work/$name.log" "$name" "$rate" "$SECS" "$s0" "$s1" "$t0" "$t1" "$hz" "$shed0" "$shed1" <<'PY'
import re, sys
log, name, rate, secs, s0, s1, t0, t1, hz, shed0, shed1 = sys.argv[1:]
text = open(log, errors="replace").read()
screen = text[text.rfind("Messages  Retrans"):] if "Messages  Retrans" in text else text
def count(msg, nth=0):
    """The message count of the nth screen line for msg (first number after its arrow)."""
    hits = []
    for line in screen.splitlines():
        tok = line.split()
        if len(tok) > 2 and tok[0] == msg and tok[1].strip("<->") == "":
            nums = [t for t in tok[2:] if t.isdigit()]
            hits.append(int(nums[0]) if nums else 0)
    return hits[nth] if len(hits) > nth else 0
def stat(label):
    m = [l for l in text.splitlines() if l.strip().startswith(label)]
    return int(m[-1].split()[-1]) if m else 0
invites = count("INVITE")
refused = count("503")
answered = count("200", 0)
completed = count("200", 1)
failed = stat("Failed call")
wall = float(s1) - float(s0)
cpu = (int(t1) - int(t0)) / int(hz)
print(f"{name}: offered {rate}/s for {secs} s = {invites} INVITEs; answered {answered}, "
      f"completed {completed} ({completed/int(secs):.0f}/s over the offered window); "
      f"refused with 503 {refused}; failed {failed}; acd shed {int(float(shed1)-float(shed0))}; "
      f"wall {wall:.1f} s; acd CPU {cpu:.1f} s")
PY
  # Let calls still in progress end before the next phase.
  sleep 5
}
phase "$RATE" sustainable
phase $((RATE * 2)) double
kill "$acd_pid"; sleep 1; rmdir "$cg" 2>/dev/null || true
echo "logs in $work"
