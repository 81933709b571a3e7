#!/usr/bin/env bash
# The cluster test bed on one machine (issue 14): network namespaces joined by a bridge in a
# namespace of their own (nothing touches the host's network): `edge` 10.77.0.10 (Kamailio with
# deploy/kamailio/edge.cfg), `acd1..3` 10.77.0.11-13, `infra` 10.77.0.20 (its own PostgreSQL
# and NATS with JetStream), `load` 10.77.0.30 (SIPp agents and callers, a capture).
#
# usage: benches/cluster/run.sh SCENARIO [NODES=3]
#   SCENARIO: baseline | kill-node | kill-leader | cut-link | stop-pg | restart-nats
#   env: AGENTS=60 CPS=2 SECS=120 TALK_MS=25000 FAULT_AT=60 (seconds into the load): about
#   50 calls talking at the fault, every caller sending audio the whole call (AUDIO=0: no
#   audio, for the signalling and coordination cost alone)
# needs root (ip netns), sip-tester, kamailio, nats-server, postgresql, python3, tcpdump/tshark
# for the audio gaps. Ends with one line:
#   cluster: <scenario> nodes=N offered=N answered=N lost=N resumed=N double_offers=N inversions=N gap_p95_ms=N
set -euo pipefail
SCEN=${1:-baseline}
N=${2:-3}
AGENTS=${AGENTS:-60}
CPS=${CPS:-2}
SECS=${SECS:-120}
TALK_MS=${TALK_MS:-25000}
FAULT_AT=${FAULT_AT:-60}
AUDIO=${AUDIO:-1}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d /tmp/acd-cluster.XXXX)
chmod 755 "$work"
P=acdc
NSES=(br edge acd1 acd2 acd3 infra load)
declare -A ADDR=([edge]=10.77.0.10 [acd1]=10.77.0.11 [acd2]=10.77.0.12 [acd3]=10.77.0.13 [infra]=10.77.0.20 [load]=10.77.0.30)
pids=()
# in_ns NS CMD…: in the foreground only (a background job of a function is a subshell).
in_ns() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }

teardown() {
  set +e
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
  pkill -9 -f "$work" 2>/dev/null
  for ns in "${NSES[@]}"; do ip netns del "$P-$ns" 2>/dev/null; done
  echo "logs in $work"
}
trap teardown EXIT

cd "$root"
cargo build --release -q
acd=$root/target/release/acd
pgbin=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)

# --- the network: one bridge in its own namespace, a veth into each host namespace
for ns in "${NSES[@]}"; do ip netns del "$P-$ns" 2>/dev/null || true; ip netns add "$P-$ns"; done
ip -n $P-br link add br0 type bridge
ip -n $P-br link set br0 up
for ns in edge acd1 acd2 acd3 infra load; do
  ip link add "v-$ns" type veth peer name "b-$ns"
  ip link set "v-$ns" netns "$P-$ns"
  ip link set "b-$ns" netns "$P-br"
  ip -n $P-br link set "b-$ns" master br0 up
  ip -n "$P-$ns" addr add "${ADDR[$ns]}/24" dev "v-$ns"
  ip -n "$P-$ns" link set "v-$ns" up
  ip -n "$P-$ns" link set lo up
done

# --- infra: NATS (JetStream on disk) and PostgreSQL of their own
start_nats() {
  ip netns exec $P-infra nats-server -a 10.77.0.20 -p 4222 -js -sd "$work/nats" > "$work/nats.log" 2>&1 &
  nats_pid=$!
  pids+=("$nats_pid")
}
start_nats
mkdir -p "$work/pg" "$work/pgsock"
chown postgres "$work/pg" "$work/pgsock"
runuser -u postgres -- "$pgbin/initdb" -D "$work/pg" -A trust -U postgres > "$work/initdb.log" 2>&1
echo "host all all 10.77.0.0/24 trust" >> "$work/pg/pg_hba.conf"
start_pg() {
  ip netns exec $P-infra runuser -u postgres -- "$pgbin/postgres" -D "$work/pg" -c listen_addresses=10.77.0.20 \
    -c unix_socket_directories="$work/pgsock" -c max_connections=200 > "$work/pg.log" 2>&1 &
  pg_pid=$!
  pids+=("$pg_pid")
}
start_pg
for _ in $(seq 1 50); do in_ns infra "$pgbin/pg_isready" -h 10.77.0.20 -q && break; sleep 0.2; done
in_ns infra runuser -u postgres -- "$pgbin/psql" -h 10.77.0.20 -U postgres -qc 'CREATE DATABASE acd' > /dev/null
DB=postgres://postgres@10.77.0.20/acd

# --- agents and the plan
for i in $(seq 3000 $((3000 + AGENTS - 1))); do
  ACD_LOG=error in_ns acd1 "$acd" --db "$DB" agents add "$i" --name "load$i" --password loadpw --skills sales > /dev/null
done
ACD_LOG=error in_ns acd1 "$acd" --db "$DB" agents add loadadmin --name "load admin" --password loadpw --role admin > /dev/null
printf '[[queue]]\nname = "sales"\nskill = "sales"\nring_timeout_s = 10\n[[number]]\ndial = "100"\nqueue = "sales"\n' > "$work/plan.toml"

# --- acd nodes
declare -A NODE_PID
start_node() {
  local k=$1 ip=${ADDR[acd$1]}
  cat > "$work/acd$k.toml" <<EOF
dialplan = "$work/plan.toml"
[sip]
listen = "$ip:5060"
advertise = "$ip"
qualify_s = 0
trusted = ["10.77.0.0/24"]
[http]
listen = "$ip:8080"
ready_on_register = true
[database]
url = "$DB"
spool_dir = "$work/spool$k"
[media]
rtp_ports = "20000-29999"
rtp_timeout_s = 120
recordings_dir = "$work/rec"
[calls]
shutdown = "resume"
[cluster]
node = "acd$k"
nats = "nats://10.77.0.20:4222"
EOF
  # Not through a shell function: $! must be acd itself (ip netns exec execs it), so a kill -9
  # reaches it.
  ACD_LOG=info ip netns exec "$P-acd$k" "$acd" --config "$work/acd$k.toml" serve > "$work/acd$k.out" 2> "$work/acd$k.log" &
  NODE_PID[$k]=$!
  pids+=("${NODE_PID[$k]}")
}
for k in $(seq 1 "$N"); do start_node "$k"; done
for k in $(seq 1 "$N"); do
  for _ in $(seq 1 100); do grep -q "acd is running" "$work/acd$k.out" 2>/dev/null && break; sleep 0.2; done
done

# --- the edge
: > "$work/dispatcher.list"
for k in $(seq 1 "$N"); do echo "1 sip:${ADDR[acd$k]}:5060 0 0" >> "$work/dispatcher.list"; done
mkdir -p "$work/kam"
in_ns edge kamailio -DD -E -m 256 -M 16 -f "$root/deploy/kamailio/edge.cfg" -Y "$work/kam" \
  -A 'EDGE_IP="10.77.0.10"' -A NO_PATH_RECEIVED -A "DISPATCHER_LIST=\"$work/dispatcher.list\"" \
  -A "CTL_SOCKET=\"unix:$work/kam/ctl\"" > "$work/kamailio.log" 2>&1 &
pids+=("$!")
sleep 3

# --- status of a node (its /api/status as the bench admin)
status() {
  in_ns load python3 - "$1" <<'PY'
import json, sys, urllib.request
base = f"http://{sys.argv[1]}:8080"
def call(path, body=None, tok=None):
    h = {"Content-Type": "application/json"}
    if tok: h["Authorization"] = "Bearer " + tok
    req = urllib.request.Request(base + path, data=json.dumps(body).encode() if body else None, headers=h)
    with urllib.request.urlopen(req, timeout=3) as r:
        return json.load(r)
try:
    tok = call("/api/login", {"id": "loadadmin", "password": "loadpw"})["token"]
    print(json.dumps(call("/api/status", tok=tok)))
except Exception as e:
    print("{}")
PY
}
leader_node() {
  for k in $(seq 1 "$N"); do
    kill -0 "${NODE_PID[$k]}" 2>/dev/null || continue
    if status "${ADDR[acd$k]}" | python3 -c 'import json,sys; s=json.load(sys.stdin); sys.exit(0 if s.get("status",{}).get("leading") else 1)'; then
      echo "$k"; return
    fi
  done
  echo 0
}

# --- load: one SIPp UAS for every agent's phone, registered through the edge; the callers
in_ns load tshark -q -i v-load -f udp -s 96 -F pcap -w "$work/load.pcap" > /dev/null 2>&1 &
capture=$!
pids+=("$capture")
in_ns load sipp -sf "$root/benches/cluster/agent.xml" -i 10.77.0.30 -p 5062 -mp 16000 -rtp_echo \
  -nostdin -buff_size 4194304 -max_socket 20000 -trace_stat -stf "$work/agents.csv" \
  -trace_msg -message_file "$work/agents-msgs.log" > "$work/agents.log" 2>&1 &
pids+=("$!")
python3 "$root/benches/cluster/rtp_pcap.py" "$work/talk.pcap" $((TALK_MS / 1000 + 60))
sed -e "s/TALK_MS/$TALK_MS/" -e "s|TALK_PCAP|$work/talk.pcap|" "$root/benches/cluster/caller.xml" > "$work/caller.xml"
[ "$AUDIO" = 1 ] || sed -i '/<nop>/,/<\/nop>/d' "$work/caller.xml"
LOCAL_IP=10.77.0.30 in_ns load python3 "$root/benches/load/register_agents.py" 10.77.0.10:5060 3000 "$AGENTS" loadpw 5062
sleep 3
calls=$((CPS * SECS))
t0=$(date +%s)
# CPU of each node from here on (the count subtracts it: start-up and registration are not
# the calls' cost).
cpu_of() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"; }
for k in $(seq 1 "$N"); do cpu_of "${NODE_PID[$k]}" > "$work/acd$k.cpu0"; done
in_ns load sipp 10.77.0.10:5060 -sf "$work/caller.xml" -s 100 -i 10.77.0.30 -p 5070 -mp 30000 \
  -r "$CPS" -m "$calls" -l 100000 -nostdin -buff_size 4194304 -max_socket 20000 -timeout $((SECS + 120))s \
  -trace_stat -stf "$work/callers.csv" -trace_err -error_file "$work/callers-errors.log" \
  -trace_msg -message_file "$work/callers-msgs.log" > "$work/callers.log" 2>&1 &
callers=$!
pids+=("$callers")

# --- the fault
fault_victim=0
if [ "$SCEN" != baseline ]; then
  sleep "$FAULT_AT"
  lead=$(leader_node)
  date +%s.%N > "$work/fault_at"
  case "$SCEN" in
    kill-node)
      for k in $(seq 1 "$N"); do [ "$k" != "$lead" ] && fault_victim=$k && break; done
      echo "fault: kill -9 acd$fault_victim (leader is acd$lead)"
      kill -9 "${NODE_PID[$fault_victim]}" ;;
    kill-leader)
      fault_victim=$lead
      echo "fault: kill -9 the leader acd$lead"
      kill -9 "${NODE_PID[$lead]}" ;;
    cut-link)
      for k in $(seq 1 "$N"); do [ "$k" != "$lead" ] && fault_victim=$k && break; done
      echo "fault: acd$fault_victim cut off for 10 s"
      ip -n $P-br link set "b-acd$fault_victim" down; sleep 10; ip -n $P-br link set "b-acd$fault_victim" up ;;
    stop-pg)
      echo "fault: PostgreSQL stopped for 60 s"
      kill -INT "$pg_pid"; sleep 60; start_pg ;;
    restart-nats)
      echo "fault: NATS restarted (5 s down)"
      kill -9 "$nats_pid"; sleep 5; start_nats ;;
    *) echo "unknown scenario $SCEN"; exit 2 ;;
  esac
  echo "fault at $(( $(date +%s) - t0 )) s into the load"
fi
wait "$callers" || true
sleep 5

kill -INT "$capture" 2>/dev/null; sleep 1
# --- the count: CPU of each live node (utime + stime), the history, the logs and the capture
for k in $(seq 1 "$N"); do
  if kill -0 "${NODE_PID[$k]}" 2>/dev/null; then
    echo "$(cpu_of "${NODE_PID[$k]}") $(cat "$work/acd$k.cpu0")" | awk '{ print $1 - $2 }' > "$work/acd$k.cpu"
  fi
done
in_ns infra runuser -u postgres -- "$pgbin/psql" -h 10.77.0.20 -U postgres -d acd -At -F ' ' -c \
  "SELECT interaction, seq, at_ms, kind, data FROM interaction_events ORDER BY interaction, seq" > "$work/events.txt" || true
python3 "$root/benches/cluster/analyse.py" "$work" "$SCEN" "$N"
