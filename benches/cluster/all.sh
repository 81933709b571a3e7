#!/usr/bin/env bash
# Every scenario of issue 14 on the one-machine bed, one after another: no-fault runs at 1, 2
# and 3 nodes with and without audio (the CPU-per-call comparison), then each fault on 3
# nodes. Each run's output goes to OUT/<scenario>-<nodes>[-noaudio].log; the summary lines
# are printed as they come.
# usage: benches/cluster/all.sh [OUT=/tmp/acd-bed]   (env as for run.sh)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-/tmp/acd-bed}
mkdir -p "$out"
runs=("0 baseline 1" "0 baseline 2" "0 baseline 3" "1 baseline 1" "1 baseline 2" "1 baseline 3"
      "1 kill-node 3" "1 kill-leader 3" "1 cut-link 3" "1 stop-pg 3" "1 restart-nats 3")
for r in "${runs[@]}"; do
  set -- $r
  name="$2-$3"; [ "$1" = 1 ] || name="$name-noaudio"
  echo "== $name"
  AUDIO=$1 "$here/run.sh" "$2" "$3" > "$out/$name.log" 2>&1
  grep -E "^(cluster:|cpu:|audio gaps|answer to offer)" "$out/$name.log"
done
