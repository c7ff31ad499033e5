#!/usr/bin/env bash
# Progress is shown on an interactive terminal (rank 0 only) and nowhere else: under script(1), which gives the job a
# terminal, the forward-pass count appears; with --no-progress, or without a terminal, it does not.
# Usage: test_progress.sh MPIEXEC NP_FLAG CNNPAR_MPI
set -euo pipefail
mpiexec=$1 npflag=$2 exe=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run="$mpiexec $npflag 2 $exe --quiet --iterations 2000 --warmup 0 --batch 16"
fail() { echo "FAIL: $*"; exit 1; }
script -qec "$run" "$work/tty.txt" >/dev/null
n=$(tr '\r' '\n' <"$work/tty.txt" | grep -c '^forward pass [0-9]*/' || true)
((n >= 1)) || fail "no progress on a terminal"
echo "progress lines on a terminal: $n"
script -qec "$run --no-progress" "$work/tty_off.txt" >/dev/null
! grep -q 'forward pass [0-9]' "$work/tty_off.txt" || fail "progress despite --no-progress"
$run >"$work/out.txt" 2>"$work/err.txt"
! grep -q 'forward pass [0-9]' "$work/out.txt" "$work/err.txt" || fail "progress without a terminal"
echo "PASS: progress only on a terminal"
