# Shared by the load scripts (source it): builds acd, adds AGENTS agents to a fresh SQLite store,
# starts `acd serve` on 127.0.0.1:15060 (HTTP 18080) with a one-queue plan (100 → sales), starts
# one SIPp UAS on port 15070 running $AGENT_SCENARIO (extra flags in $AGENT_FLAGS) for all the
# agents' phones, and registers every agent to it. ACD_WRAP and SIPP_WRAP prefix acd's and the
# UAS's command (e.g. `taskset -c 0`). Extra acd.toml lines come from ACD_TOML. Sets: root, work, db, acd, acd_pid, hz, ticks(), start_acd, status_json.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/acd-load.XXXX)
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
cd "$root"
cargo build --release -q
acd=$root/target/release/acd
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }   # utime+stime in clock ticks
hz=$(getconf CLK_TCK)
db="sqlite://$work/load.db"
for i in $(seq 3000 $((3000 + AGENTS - 1))); do
  ACD_LOG=error "$acd" --db "$db" agents add "$i" --name "load$i" --password loadpw --skills sales >/dev/null
done
ACD_LOG=error "$acd" --db "$db" agents add loadadmin --name "load admin" --password loadpw --role admin >/dev/null
# The status API needs a session: log the bench's admin in once acd listens (status_json below).
status_json() {
  local tok
  tok=$(curl -s -X POST -H 'Content-Type: application/json' -d '{"id":"loadadmin","password":"loadpw"}' \
    127.0.0.1:18080/api/login | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  curl -s -H "Authorization: Bearer $tok" 127.0.0.1:18080/api/status
}
printf '[[queue]]\nname = "sales"\nskill = "sales"\n[[number]]\ndial = "100"\nqueue = "sales"\n' > "$work/plan.toml"
# Load agents are phones without desks: ready as soon as they register.
# SIPp stands in for a trunk delivering the load: trusted, so the per-source budgets do not apply.
printf '[sip]\ntrusted = ["127.0.0.1"]\n%b\n[http]\nready_on_register = true\n' "${ACD_TOML:-}" > "$work/acd.toml"
# start_acd [LOG]: starts acd in the background (again, after a kill, on the same store).
start_acd() {
  ACD_LOG=warn ${ACD_WRAP:-} "$acd" --config "$work/acd.toml" --db "$db" serve --sip-listen 127.0.0.1:15060 --http-listen 127.0.0.1:18080 \
    --dialplan "$work/plan.toml" --rtp-ports 20000-40000 > "$work/${1:-acd.log}" 2>&1 &
  acd_pid=$!
}
start_acd
sleep 1
# shellcheck disable=SC2086
${SIPP_WRAP:-} sipp -sf "$AGENT_SCENARIO" -i 127.0.0.1 -p 15070 -mp 16000 -nostdin -buff_size 4194304 $AGENT_FLAGS \
  > "$work/agents.log" 2>&1 &
python3 "$root/benches/load/register_agents.py" 127.0.0.1:15060 3000 "$AGENTS" loadpw 15070
