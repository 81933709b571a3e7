#!/usr/bin/env bash
# Runs every fuzz target coverage-guided (cargo fuzz, libFuzzer) for SECONDS each, starting
# from its seeds (fuzz/seeds/<target>, and the SIP torture corpus for the sip_* targets).
# New interesting inputs go to fuzz/corpus/<target> (kept between runs, not committed);
# crashes to fuzz/artifacts/<target>: copy one into fuzz/seeds/<target> once it is fixed, and
# tests/fuzz_seeds.rs keeps it as a regression test.
#
# usage: fuzz/run.sh [SECONDS=20] [TARGET…]   (README has the long run)
# With FUZZ_RUNS=N each target runs exactly N inputs from seed 1 instead of for SECONDS: the same
# tree gives the same result, which is how CI runs it (a time-boxed random run could fail CI
# on a bug the change did not bring).
# needs: the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz --locked`).
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-20}; shift || true
targets=("$@")
[ "${#targets[@]}" -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
cargo +nightly fuzz build -O
mkdir -p logs
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  dirs=("corpus/$t")
  [ -d "seeds/$t" ] && dirs+=("seeds/$t")
  case $t in sip_*) dirs+=(../tests/data/sip-torture/rfc4475 ../tests/data/sip-torture/rfc5118) ;; esac
  if [ -n "${FUZZ_RUNS:-}" ]; then echo "== fuzz $t: $FUZZ_RUNS runs"; else echo "== fuzz $t for ${secs}s"; fi
  rc=0
  if [ -n "${FUZZ_RUNS:-}" ]; then budget=(-runs="$FUZZ_RUNS" -seed=1); else budget=(-max_total_time="$secs"); fi
  cargo +nightly fuzz run -O "$t" "${dirs[@]}" -- "${budget[@]}" -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 > "logs/$t.log" 2>&1 || rc=$?
  grep -E "^stat::(number_of_executed_units|peak_rss_mb)|panicked|SUMMARY" "logs/$t.log" || true
  if [ "$rc" -ne 0 ]; then
    tail -40 "logs/$t.log"
    echo "fuzz: $t failed (exit $rc); crashing inputs, if any, are in fuzz/artifacts/$t"
    exit 1
  fi
done
