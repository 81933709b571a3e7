#!/usr/bin/env bash
# Every scenario of issue 14 on the one-machine bed, one after another: no-fault runs at 1, 2
# and 3 nodes (the CPU-per-call comparison), then each fault on 3 nodes. Each run's output
# goes to OUT/<scenario>-<nodes>.log; the summary lines are printed at the end.
# usage: benches/cluster/all.sh [OUT=/tmp/acd-bed]   (env as for run.sh)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-/tmp/acd-bed}
mkdir -p "$out"
runs=("baseline 1" "baseline 2" "baseline 3" "kill-node 3" "kill-leader 3" "cut-link 3" "stop-pg 3" "restart-nats 3")
for r in "${runs[@]}"; do
  set -- $r
  echo "== $1 on $2 nodes"
  "$here/run.sh" "$1" "$2" > "$out/$1-$2.log" 2>&1
  grep -E "^(cluster:|cpu:|audio gaps|answer to offer)" "$out/$1-$2.log"
done
