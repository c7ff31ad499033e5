#!/usr/bin/env bash
# Runs one libFuzzer target for a bounded time: run_fuzz.sh TARGET SEEDS_DIR WORK_DIR SECONDS.
# Every committed input in SEEDS_DIR runs first (seeds, and crashes kept as regression tests); then libFuzzer mutates
# them for SECONDS into WORK_DIR/corpus (the committed directory is never written). A crash, a leak, a timeout (10 s
# for one input) or running out of memory (2 GB) fails the run; the input that did it is in WORK_DIR/artifacts.
# To keep it as a regression test once fixed: cp WORK_DIR/artifacts/crash-* SEEDS_DIR/
set -euo pipefail
target=$1 seeds=$2 work=$3 seconds=$4
mkdir -p "$work/corpus" "$work/artifacts"
# libFuzzer prints a progress line per new coverage; keep the log and show its head and tail.
log=$work/fuzz.log
status=0
"$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus" "$seeds" >"$log" 2>&1 || status=$?
grep -E "INFO: seed corpus|INITED|DONE|stat::number_of_executed_units|stat::peak_rss_mb" "$log" || true
if ((status != 0)); then
  echo "FAIL: $(basename "$target") exited with $status; the last 60 lines of its log:"
  tail -n 60 "$log"
  ls -l "$work/artifacts"
  echo "Once fixed, keep the input as a regression test: cp $work/artifacts/<file> $seeds/"
  exit 1
fi
