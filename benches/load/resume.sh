#!/usr/bin/env bash
# Crash survival at load: CALLS bridged calls in progress (SIPp callers → acd → as many
# registered agents, one SIPp UAS for all their phones), acd killed with SIGKILL once every
# call's snapshot says "connected", then started again on the same SQLite store. Measures the
# time from the new start to the last call resumed (both legs' re-INVITEs answered), then the
# callers hang up 5 s later and every SIPp call must succeed (BYE answered 200, not 481).
#
# usage: benches/load/resume.sh [CALLS=500] [RATE=100]
# needs: sip-tester, python3; loopback only.
set -euo pipefail
CALLS=${1:-500}; RATE=${2:-100}; AGENTS=${AGENTS:-$CALLS}
AGENT_SCENARIO="$(cd "$(dirname "$0")/../.." && pwd)/benches/load/resume_agent.xml"
# Both SIPps log every message with its time: the last re-INVITE answer acd ACKs is the end.
msgs=$(mktemp -d /tmp/acd-resume-msgs.XXXX)
AGENT_FLAGS="-max_socket 65000 -trace_msg -message_file $msgs/agents.log"
# The calls send no audio: keep them up across the kill and the resume.
ACD_TOML="[media]\nrtp_timeout_s = 300"
. "$(dirname "$0")/common.sh"
echo "== $CALLS calls at $RATE/s to $AGENTS agents, kill -9, start again"
sipp 127.0.0.1:15060 -sf "$root/benches/load/resume_caller.xml" -s 100 -i 127.0.0.1 -p 15090 \
  -mp 17000 -r "$RATE" -m "$CALLS" -l "$CALLS" -d 5000 -max_socket 65000 -buff_size 4194304 \
  -nostdin -timeout 300s -trace_msg -message_file "$msgs/callers.log" > "$work/callers.log" 2>&1 &
callers=$!
python3 - "$work/load.db" "$CALLS" <<'PY'
import sqlite3, sys, time
db, n = sys.argv[1], int(sys.argv[2])
end = time.time() + 180
while time.time() < end:
    try:
        c = sqlite3.connect(db, timeout=5)
        k = c.execute("SELECT COUNT(*) FROM call_snapshots WHERE body LIKE '%\"phase\":\"connected\"%'").fetchone()[0]
        c.close()
        if k >= n:
            print(f"{k} connected calls saved")
            sys.exit(0)
    except sqlite3.Error:
        pass
    time.sleep(0.2)
sys.exit("the calls did not all connect and get saved")
PY
kill -9 "$acd_pid"; wait "$acd_pid" 2>/dev/null || true
s0=$(date +%s.%N)
start_acd acd-2.log
python3 - "$s0" "$CALLS" "$work/acd-2.log" <<'PY'
import json, sys, time, urllib.request
s0, n, log = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
base = "http://127.0.0.1:18080"
def call(path, body=None, tok=None):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode() if body else None,
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": "Bearer " + tok} if tok else {})})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)
tok, up = None, None
end = time.time() + 120
while time.time() < end:
    try:
        if tok is None:
            tok = call("/api/login", {"id": "loadadmin", "password": "loadpw"})["token"]
            up = time.time()
        s = call("/api/status", tok=tok)["status"]
        if s["calls"] >= n and s["resuming"] == 0:
            t = time.time()
            print(f"http up {up - s0:.2f} s after start; last call resumed {t - s0:.2f} s after start "
                  f"({s['calls']} calls, {s['totals']['ended']} ended)")
            sys.exit(0)
    except Exception:
        pass
    time.sleep(0.02)
sys.exit("not every call was resumed")
PY
wait "$callers" || true
python3 - "$s0" "$msgs/callers.log" "$msgs/agents.log" <<'PY'
import sys
from datetime import datetime
s0, last, n = float(sys.argv[1]), 0.0, 0
for path in sys.argv[2:]:
    lines = open(path, errors="replace").read().splitlines()
    for i, l in enumerate(lines):
        if not l.startswith("-----------------------------------------------"):
            continue
        try:  # SIPp's local time, as `date` gave s0
            t = datetime.strptime(" ".join(l.split()[-2:]), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        except ValueError:
            continue
        if t < s0 or i + 2 >= len(lines) or "message received" not in lines[i + 1]:
            continue
        first = next((x for x in lines[i + 2:i + 6] if x.strip()), "")
        if first.startswith("ACK "):
            n += 1
            last = max(last, t)
print(f"phones: {n} re-INVITE answers ACKed by the new process; the last {last - s0:.3f} s after its start")
PY
rm -rf "$msgs"
ok=$(grep -E "^ *Successful call" "$work/callers.log" | awk '{print $(NF)}' | tail -1)
failed=$(grep -E "^ *Failed call" "$work/callers.log" | awk '{print $(NF)}' | tail -1)
echo "callers: $ok ok / $failed failed (each answered the new process's re-INVITE and hung up with 200)"
echo "logs in $work"
