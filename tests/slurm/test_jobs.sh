#!/usr/bin/env bash
# CI test of the job scripts in jobs/: start a private Slurm (scripts/slurm_local.sh) in a temporary state dir and,
# through jobs/submit_sweep.sh and sbatch, run
#   - a strong-scaling sweep (P = 1, 2, 4; 5 iterations) and its dependent analysis job,
#   - a consolidation study (--compare on 4 ranks as 2 emulated nodes) and its analysis job,
#   - a sweep whose run fails (CNNPAR_EXTRA_ARGS=--bogus) and its analysis job, which must never run,
#   - a single run launched with srun --mpi=pmix (mpirun where this Slurm has no PMIx), configured by environment,
#   - a weak-scaling sweep (P = 1, 2) into the default results root, without analysis,
# then check every job's end state and exit code (slurm_local.sh wait-job), every results file and its /meta (Slurm
# job id, task count, rank count, batch, consolidation, plan; read with h5py), the sweep reports, and that the failed
# sweep's analysis job was cancelled by Slurm (CANCELLED, reason DependencyNeverSatisfied; without
# --kill-on-invalid-dep Slurm 22.05 would leave it PENDING with that reason forever, which is checked too).
# Finally stop Slurm and check that nothing of it is left running.
# Exit 0: all passed; 1: something failed; 77: "SKIP: ..." when Slurm cannot be installed or started here.
# Needs no TTY and no stdin; works as root. Results go to a temporary dir (removed unless something failed).
# CNNPAR_BUILD_DIR: the build with cnnpar_mpi (default <repo>/build). CNNPAR_JOBS_TEST_BUDGET (default 150): seconds
# the waits for jobs may take in all. Takes 9 to 13 s on the 2-core development VM (18 s with three copies at once).
set -euo pipefail
exec </dev/null

SLURM_TEST_NAME=jobs
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
J=$root/jobs
bin=${CNNPAR_BUILD_DIR:-$root/build}/cnnpar_mpi
python=/usr/bin/python3
[[ -x $python ]] || python=python3

# The jobs must work from the scripts alone: none of the submitter's MPI or cnnpar settings may help them.
unset OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM OMPI_MCA_rmaps_base_oversubscribe \
  OMPI_MCA_mpi_yield_when_idle SBATCH_PARTITION SBATCH_ACCOUNT SBATCH_EXPORT
for v in $(compgen -v CNNPAR_); do
  case $v in CNNPAR_BUILD_DIR | CNNPAR_SLURM_* | CNNPAR_JOBS_TEST_BUDGET) ;; *) unset "$v" ;; esac
done

if [[ ! -x $bin ]]; then
  echo "FAIL: no executable $bin: build first (scripts/build.sh) or set CNNPAR_BUILD_DIR"
  exit 1
fi

results=$work/results
sub=$work/submit  # the directory jobs are submitted from (their SLURM_SUBMIT_DIR)
mkdir -p "$sub"

# ---- install (Slurm, munge, mpirun) and start
slurm_test_start
[[ $envline == "export SLURM_CONF=$SLURM_CONF" ]] || fail "start printed '$envline'"
mpi=$(sed -n 's/^MpiDefault=//p' "$SLURM_CONF")
node=$(uname -n)
node=${node%%.*}
echo "Slurm up $((SECONDS - t_begin)) s after the test began (MpiDefault=$mpi)"

# ---- submit
cd "$sub"
declare -A ids=()  # name -> job id
# sweep NAME [ENV=VALUE...] -- SUBMIT_SWEEP_ARGS...: run submit_sweep.sh, keep its output, take the job ids from it
sweep() {
  local name=$1 envs=() out rc=0
  shift
  while [[ $1 != -- ]]; do envs+=("$1"); shift; done
  shift
  out=$(env "${envs[@]}" "$J/submit_sweep.sh" "$@" 2>&1) || rc=$?
  printf '%s\n' "$out" >"$work/$name.submit.txt"
  if ((rc)); then fail "submit_sweep.sh $* exited $rc: $out"; return 0; fi
  ids[$name]=$(sed -n 's/^sweep job: *\([0-9][0-9]*\) .*/\1/p' <<<"$out")
  ids[$name.analysis]=$(sed -n 's/^analysis job: *\([0-9][0-9]*\) .*/\1/p' <<<"$out")
  if [[ -n ${ids[$name]} ]]; then
    pass "submit_sweep.sh $*: sweep job ${ids[$name]}${ids[$name.analysis]:+, analysis job ${ids[$name.analysis]}}"
  else
    fail "submit_sweep.sh $*: no job id in its output: $out"
  fi
}

sweep strong -- --strong -n 4 --batch 8 --iterations 5 --warmup 2 --results "$results" --bin "$bin"
sweep compare CNNPAR_RANKS_PER_NODE=2 CNNPAR_ITERATIONS=5 CNNPAR_WARMUP=2 CNNPAR_BIN="$bin" -- \
  --compare -n 4 --batch 4 --results "$results"
sweep bad CNNPAR_EXTRA_ARGS=--bogus -- -n 2 --iterations 5 --results "$results" --bin "$bin"
# what plain Slurm does with an analysis job whose dependency failed (no --kill-on-invalid-dep)
if [[ -n ${ids[bad]:-} ]]; then
  ids[plain_dep]=$(sbatch --parsable -o "$work/plain-dep-%j.out" --dependency="afterok:${ids[bad]}" \
    "$J/analyze.sbatch" "$results/${ids[bad]}")
fi
launcher=mpirun
[[ $mpi == pmix ]] && launcher=srun
if id=$(env CNNPAR_LAUNCHER=$launcher CNNPAR_BATCH=2 CNNPAR_CONSOLIDATION=shared CNNPAR_PLAN=fused \
  CNNPAR_ITERATIONS=5 CNNPAR_RESULTS="$results" CNNPAR_BIN="$bin" \
  sbatch --parsable -n 2 -o "$work/single-%j.out" "$J/single.sbatch" 2>&1); then
  ids[single]=${id%%;*}
  pass "sbatch jobs/single.sbatch (CNNPAR_LAUNCHER=$launcher): job ${ids[single]}"
else
  fail "sbatch jobs/single.sbatch: $id"
fi
[[ $launcher == srun ]] || note "this Slurm has no PMIx (MpiDefault=$mpi): the srun launcher is not checked"
# the default results root is $SLURM_SUBMIT_DIR/results
sweep weak CNNPAR_BIN="$bin" -- --weak -n 2 --batch-per-rank 2 --iterations 3 --warmup 1 --no-analysis

# bad usage is refused before anything is submitted
if out=$("$J/submit_sweep.sh" --frobnicate 2>&1); then fail "submit_sweep.sh --frobnicate exited 0"; else
  rc=$?
  if [[ $rc == 2 && $out == *"unknown option '--frobnicate'"* ]]; then
    pass "submit_sweep.sh --frobnicate: exit 2, $out"
  else
    fail "submit_sweep.sh --frobnicate: exit $rc, '$out'"
  fi
fi
if out=$("$J/submit_sweep.sh" --bin "$work/no-such-binary" 2>&1); then
  fail "submit_sweep.sh with a missing binary exited 0"
elif [[ $out == *"no executable cnnpar_mpi at $work/no-such-binary"* ]]; then
  pass "a missing binary is refused at submission"
else
  fail "submit_sweep.sh with a missing binary: '$out'"
fi
echo "submitted $((SECONDS - t_begin)) s after the test began"

# ---- helpers for the checks
left() {  # seconds left of the budget for waiting
  local l=$((${CNNPAR_JOBS_TEST_BUDGET:-150} - (SECONDS - t_begin)))
  ((l > 5)) || l=5
  echo "$l"
}
show_log() { [[ -s $1 ]] && sed 's/^/    | /' "$1" | tail -n "${2:-30}"; return 0; }
# wait_job NAME RC STATE EXITCODE [REASON] [LOG]: wait-job's verdict for the job
wait_job() {
  local name=$1 want_rc=$2 want_state=$3 want_code=$4 want_reason=${5:-} log=${6:-} id=${ids[$1]:-} out rc=0
  [[ -n $id ]] || { fail "$name: never submitted"; return 1; }
  out=$("$S" wait-job "$id" "$(left)") || rc=$?
  if [[ $rc == "$want_rc" && $out == *"JobState=$want_state ExitCode=$want_code "* \
    && (-z $want_reason || $out == *" Reason=$want_reason") ]]; then
    pass "$name (job $id): $out"
  else
    fail "$name (job $id): wait-job exited $rc with '$out';" \
      "expected $want_rc, $want_state $want_code${want_reason:+ $want_reason}"
    [[ -n $log ]] && show_log "$log" 40
    return 1
  fi
}
# check_meta FILE GROUPS KEY=VALUE...: the results file's /meta (every /compare group's, for a --compare file) has
# these attributes, and its combinations are exactly GROUPS (consolidation_plan, comma-separated, any order)
cat >"$work/check_meta.py" <<'EOF'
import sys
import h5py

path, groups, checks = sys.argv[1], sorted(sys.argv[2].split(",")), [a.split("=", 1) for a in sys.argv[3:]]
problems = []
with h5py.File(path, "r") as f:
    if "compare" in f:
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in f["compare/combinations"][...]]
        metas = {n: f["compare"][n]["meta"].attrs for n in names}
    else:
        a = f["meta"].attrs
        metas = {f"{a['consolidation']}_{a['plan']}": a}
    if sorted(metas) != groups:
        problems.append(f"combinations {sorted(metas)}, expected {groups}")
    for name, attrs in metas.items():
        for key, want in checks + [["consolidation", name.split("_")[0]], ["plan", name.split("_", 1)[1]]]:
            got = attrs.get(key)
            got = got.decode() if isinstance(got, bytes) else got
            if str(got) != want:
                problems.append(f"{name}: /meta@{key} = {got!r}, expected {want!r}")
print("; ".join(problems) if problems
      else f"{len(metas)} combination(s): " + ", ".join(f"{k}={v}" for k, v in checks))
sys.exit(1 if problems else 0)
EOF
check_meta() {
  local file=$1 out
  shift
  if [[ ! -s $file ]]; then fail "missing results file $file"; return 0; fi
  if out=$("$python" "$work/check_meta.py" "$file" "$@" 2>&1); then pass "${file#"$work"/}: $out"
  else fail "${file#"$work"/}: $out"; fi
}
# only_files DIR NAME...: DIR holds exactly these .h5 files
only_files() {
  local dir=$1 got want
  shift
  got=$(cd "$dir" 2>/dev/null && find . -maxdepth 1 -name '*.h5' -printf '%f\n' | sort | tr '\n' ' ' | sed 's/ $//')
  want=$(printf '%s\n' "$@" | sort | tr '\n' ' ' | sed 's/ $//')
  if [[ $got == "$want" ]]; then pass "${dir#"$work"/}/ holds exactly: $want"; else
    fail "${dir#"$work"/}/ holds '${got}', expected '$want'"; fi
}
# check_report DIR RUNS FILES: DIR/report/sweep.md made from RUNS runs in FILES files, with its figures
check_report() {
  local dir=$1 runs=$2 files=$3 f ok=1
  for f in sweep.md speedup.png efficiency.png consolidation.png; do
    [[ -s $dir/report/$f ]] || { fail "${dir#"$work"/}/report/$f missing or empty"; ok=0; }
  done
  ((ok)) || return 0
  if head -n1 "$dir/report/sweep.md" | grep -qx '# cnnpar scaling sweep' \
    && grep -q "^$runs runs from $files files" "$dir/report/sweep.md"; then
    pass "${dir#"$work"/}/report/sweep.md: $runs runs from $files files, with its speedup, efficiency and" \
      "consolidation figures"
  else
    fail "${dir#"$work"/}/report/sweep.md does not start as expected:"
    head -n 3 "$dir/report/sweep.md" | cut -c1-200 | sed 's/^/    | /'
  fi
}

# ---- the strong-scaling sweep and its report
s=${ids[strong]:-}
if wait_job strong 0 COMPLETED 0:0 "" "$results/cnnpar-strong-$s.out"; then
  only_files "$results/$s" cnnpar_np{1,2,4}_b8_allgatherv_per-layer.h5
  for p in 1 2 4; do
    check_meta "$results/$s/cnnpar_np${p}_b8_allgatherv_per-layer.h5" allgatherv_per-layer \
      "slurm_job_id=$s" slurm_ntasks=4 "nprocs=$p" batch=8 iterations=5 "slurm_job_nodelist=$node" \
      "verification=bit-for-bit equal"
  done
  if grep -q "results:    $results/$s/" "$work/strong.submit.txt" \
    && grep -q "report:     $results/$s/report/sweep.md" "$work/strong.submit.txt"; then
    pass "submit_sweep.sh named the results and report paths"
  else
    fail "submit_sweep.sh output lacks the results/report paths: $(cat "$work/strong.submit.txt")"
  fi
fi
if wait_job strong.analysis 0 COMPLETED 0:0 "" "$results/cnnpar-analyze-${ids[strong.analysis]:-}.out"; then
  check_report "$results/$s" 3 3
fi

# ---- the consolidation study: 2 emulated nodes, so allgatherv and hierarchical with every plan, shared skipped
c=${ids[compare]:-}
if wait_job compare 0 COMPLETED 0:0 "" "$results/cnnpar-compare-$c.out"; then
  only_files "$results/$c" cnnpar_np4_b4_compare.h5
  check_meta "$results/$c/cnnpar_np4_b4_compare.h5" \
    "$(echo {allgatherv,hierarchical}_{per-layer,fused,fused-column} | tr ' ' ,)" \
    "slurm_job_id=$c" slurm_ntasks=4 nprocs=4 batch=4 nodes=2 ranks_per_node=2
fi
if wait_job compare.analysis 0 COMPLETED 0:0 "" "$results/cnnpar-analyze-${ids[compare.analysis]:-}.out"; then
  check_report "$results/$c" 6 1
fi

# ---- the failing sweep: FAILED with cnnpar_mpi's exit status 2; its analysis job cancelled without running
b=${ids[bad]:-}
if wait_job bad 1 FAILED 2:0 NonZeroExitCode "$results/cnnpar-strong-$b.out"; then
  if grep -q "unrecognised option '--bogus'" "$results/cnnpar-strong-$b.out" \
    && grep -q "FAILED with exit status 2" "$results/cnnpar-strong-$b.out"; then
    pass "the failed sweep's log has cnnpar_mpi's message and the failed run"
  else
    fail "the failed sweep's log lacks the error:"; show_log "$results/cnnpar-strong-$b.out"
  fi
  if compgen -G "$results/$b/*.h5" >/dev/null; then fail "the failed sweep left results files"; else
    pass "the failed sweep left no results file"; fi
fi
if wait_job bad.analysis 1 CANCELLED 0:0 DependencyNeverSatisfied; then
  a=${ids[bad.analysis]}
  if [[ -e $results/cnnpar-analyze-$a.out || -e $results/$b/report ]]; then
    fail "the cancelled analysis job ran (log or report exists)"
  else
    pass "the analysis job after the failed sweep never ran (no log, no report)"
  fi
fi
if [[ -n ${ids[plain_dep]:-} ]]; then
  # plain Slurm 22.05: the job stays PENDING, reason DependencyNeverSatisfied, until cancelled
  out=
  for ((i = 0; i < 40; i++)); do
    out=$(scontrol show job -o "${ids[plain_dep]}" 2>&1 || true)
    [[ $out == *"JobState=PENDING Reason=DependencyNeverSatisfied "* ]] && break
    sleep 0.25
  done
  if [[ $out == *"JobState=PENDING Reason=DependencyNeverSatisfied "* ]]; then
    pass "without --kill-on-invalid-dep the analysis job stays PENDING (DependencyNeverSatisfied)"
  else
    fail "without --kill-on-invalid-dep: $(grep -o 'JobState=[^ ]* Reason=[^ ]*' <<<"$out" || echo "$out")"
  fi
  scancel "${ids[plain_dep]}" || true
fi

# ---- the single run, configured through the environment
g=${ids[single]:-}
if wait_job single 0 COMPLETED 0:0 "" "$work/single-$g.out"; then
  only_files "$results/$g" cnnpar_np2_b2_shared_fused.h5
  check_meta "$results/$g/cnnpar_np2_b2_shared_fused.h5" shared_fused "slurm_job_id=$g" slurm_ntasks=2 nprocs=2 \
    batch=2 iterations=5
  if [[ $launcher == srun ]]; then
    if grep -q "P=2: srun --mpi=pmix --ntasks=2" "$work/single-$g.out"; then
      pass "the single run was launched by srun --mpi=pmix"
    else
      fail "the single run's log shows no srun launch:"
      show_log "$work/single-$g.out" 10
    fi
  fi
fi

# ---- the weak-scaling sweep, into the default results root ($SLURM_SUBMIT_DIR/results)
w=${ids[weak]:-}
if wait_job weak 0 COMPLETED 0:0 "" "$sub/results/cnnpar-weak-$w.out"; then
  only_files "$sub/results/$w" cnnpar_np1_b2_allgatherv_per-layer.h5 cnnpar_np2_b4_allgatherv_per-layer.h5
  check_meta "$sub/results/$w/cnnpar_np1_b2_allgatherv_per-layer.h5" allgatherv_per-layer "slurm_job_id=$w" \
    slurm_ntasks=2 nprocs=1 batch=2
  check_meta "$sub/results/$w/cnnpar_np2_b4_allgatherv_per-layer.h5" allgatherv_per-layer "slurm_job_id=$w" \
    slurm_ntasks=2 nprocs=2 batch=4
fi
if [[ -n $(squeue -h -o %i 2>/dev/null) ]]; then fail "jobs still queued: $(squeue -h -o '%i %j %T %r')"; else
  pass "no job left in the queue"; fi
echo "jobs checked $((SECONDS - t_begin)) s after the test began"

cd /
# ---- stop: nothing of ours left running
slurm_test_stop

slurm_test_end "slurm jobs"
