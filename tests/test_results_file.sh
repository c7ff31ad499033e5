#!/usr/bin/env bash
# End-to-end test of --output at an uneven rank count: the file matches the schema and the byte model, an existing
# file is never replaced without --force (and keeps its bytes), --force replaces it, a run that fails leaves no file
# and no temporary file behind.
# Usage: test_results_file.sh PYTHON CHECKER MPIEXEC NP_FLAG NP CNNPAR_MPI WORKDIR
set -euo pipefail
python=$1 checker=$2 mpiexec=$3 npflag=$4 np=$5 exe=$6 work=$7
rm -rf "$work" && mkdir -p "$work"
run() { "$mpiexec" "$npflag" "$np" "$exe" --quiet --iterations 5 --warmup 1 "$@"; }
fail() { echo "FAIL: $*"; exit 1; }

out="$work/run.h5"
run --output "$out" --verify | tail -n 3
"$python" "$checker" "$out" --nprocs "$np" --iterations 5 --batch 1
before=$(cksum <"$out")

# No overwrite without --force: one error, exit 2, the file untouched.
set +e
msg=$(run --output "$out" 2>&1 >/dev/null)
status=$?
set -e
((status == 2)) || fail "second run without --force exited $status, expected 2"
grep -q "cnnpar_mpi: error: output file '$out' exists; pass --force to overwrite it" <<<"$msg" || fail "message: $msg"
[[ "$(cksum <"$out")" == "$before" ]] || fail "the existing file changed"

# --force replaces it (a different batch proves the content changed).
run --output "$out" --force --batch 3 >/dev/null
"$python" "$checker" "$out" --nprocs "$np" --batch 3
[[ "$(cksum <"$out")" != "$before" ]] || fail "--force did not replace the file"

# A directory gets the default name carrying the configuration.
run --output "$work/" >/dev/null
[[ -f "$work/cnnpar_np${np}_b1_allgatherv_per-layer.h5" ]] || fail "default name not used: $(ls "$work")"

# A run that fails before writing leaves nothing behind.
set +e
run --output "$work/bad.h5" --index 9999 >/dev/null 2>&1
status=$?
set -e
((status == 2)) || fail "bad run exited $status"
[[ ! -e "$work/bad.h5" ]] || fail "a failed run left bad.h5"
leftovers=$(find "$work" -name '.*.tmp.*')
[[ -z "$leftovers" ]] || fail "temporary files left: $leftovers"
echo "PASS: results file written, checked, protected and replaced only with --force"
