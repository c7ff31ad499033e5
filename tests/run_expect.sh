#!/usr/bin/env bash
# Runs a command and checks what a user would see: its exit status, patterns in stdout, exactly one error line on
# stderr, a time limit, and (for the verify runs) that every run prints the same output checksum.
# Usage: run_expect.sh [--exit N] [--stdout RE]... [--stderr-once RE] [--within S] [--checksum-file F] -- command...
set -uo pipefail
want_exit=0 within=120 checksum_file="" stderr_once=""
stdout_patterns=()
while (($#)); do
  case "$1" in
    --exit) want_exit=$2; shift 2 ;;
    --stdout) stdout_patterns+=("$2"); shift 2 ;;
    --stderr-once) stderr_once=$2; shift 2 ;;
    --within) within=$2; shift 2 ;;
    --checksum-file) checksum_file=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "run_expect: unknown argument $1" >&2; exit 64 ;;
  esac
done
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
start=$EPOCHREALTIME
timeout --kill-after=5 "$within" "$@" >"$out" 2>"$err"
status=$?
elapsed=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
fail() {
  echo "FAIL: $*"
  echo "--- command: $*"; echo "--- stdout:"; cat "$out"; echo "--- stderr:"; cat "$err"
  exit 1
}
echo "exit status $status after ${elapsed}s: $*"
((status == 124 || status == 137)) && fail "timed out after ${within}s (a hang?)"
[[ "$status" == "$want_exit" ]] || fail "exit status $status, expected $want_exit"
for re in "${stdout_patterns[@]}"; do
  grep -Eq -- "$re" "$out" || fail "stdout does not match /$re/"
done
if [[ -n "$stderr_once" ]]; then
  n=$(grep -c -- "cnnpar_mpi: error" "$err")
  ((n == 1)) || fail "expected exactly one error message on stderr, got $n"
  grep -Eq -- "$stderr_once" "$err" || fail "stderr does not match /$stderr_once/"
  cat "$err"
fi
if [[ -n "$checksum_file" ]]; then
  sum=$(grep -Eo 'checksum fnv1a64=0x[0-9a-f]+' "$out" | head -n 1)
  [[ -n "$sum" ]] || fail "no checksum printed"
  if [[ -s "$checksum_file" ]] && ! grep -qxF -- "$sum" "$checksum_file"; then
    fail "checksum '$sum' differs from an earlier run's: $(sort -u "$checksum_file" | tr '\n' ' ')"
  fi
  echo "$sum" >>"$checksum_file"
  echo "$sum"
fi
grep -E "bit-for-bit|checksum" "$out" || true
exit 0
