#!/usr/bin/env bash
# Self-check of scripts/slurm_local.sh: start a private Slurm in a temporary state dir, run batch jobs through it
# (a one-task job, mpirun on 4 and on 8 ranks, srun inside a job, an MPI program launched by srun, a job that exits 3,
# a job cancelled while pending, a request too big for the node), check states, exit codes and output files, then
# stop Slurm and check that no daemon of it is left.
# Exit 0: all passed; 1: something failed; 77: "SKIP: ..." when Slurm cannot be installed or started here.
# Needs no TTY and no stdin. Takes about 10 s; CNNPAR_SLURM_TEST_BUDGET (default 90) bounds the waits for jobs.
set -euo pipefail
exec </dev/null

SLURM_TEST_NAME=slurm-test
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

# ---- install (Slurm, munge, and mpirun for the jobs) and start
slurm_test_start
if [[ $envline == "export SLURM_CONF=$state/slurm.conf" ]]; then
  pass "start prints the env line: $envline"
else
  fail "start printed '$envline', expected 'export SLURM_CONF=$state/slurm.conf'"
fi

# a second start finds it running and says the same
if [[ $("$S" start "$state" 2>/dev/null) == "$envline" ]]; then pass "start again: already running"; else
  fail "start again did not print the env line"; fi
if "$S" status "$state" >/dev/null; then pass "status: running"; else fail "status says not running"; fi

# ---- jobs: the submitter's environment reaches the job, so allow Open MPI to run as root and to oversubscribe
if ((EUID == 0)); then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_rmaps_base_oversubscribe=1
mpi=$(sed -n 's/^MpiDefault=//p' "$SLURM_CONF")
host=$(hostname)

declare -A ids=()
submit() {  # name sbatch-args...
  local name=$1 id
  shift
  if id=$(sbatch --parsable -J "$name" -D "$work" -o "$work/$name.out" "$@" 2>"$work/$name.sbatch.err"); then
    ids[$name]=${id%%;*}
  else
    fail "sbatch $name: $(cat "$work/$name.sbatch.err")"
  fi
}

# shellcheck disable=SC2016  # $SLURM_NTASKS and $(hostname) are the job's
submit one -n 1 --wrap 'echo "ntasks=$SLURM_NTASKS host=$(hostname)"'
# shellcheck disable=SC2016
submit mpirun4 -n 4 --wrap 'mpirun -np $SLURM_NTASKS hostname'
submit exit3 -n 1 --wrap 'echo about to exit 3; exit 3'
submit srun2 -n 2 --wrap "srun --mpi=$mpi -n 2 hostname"
if command -v mpicc >/dev/null && [[ $mpi == pmix ]]; then
  cat >"$work/mpi_hello.c" <<'EOF'
#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv) {
  int rank, size, sum, one = 1;
  MPI_Init(&argc, &argv);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  printf("rank %d of %d sum %d\n", rank, size, sum);
  MPI_Finalize();
  return sum == size ? 0 : 1;
}
EOF
  if mpicc -o "$work/mpi_hello" "$work/mpi_hello.c" 2>"$work/mpicc.err"; then
    submit srun_mpi4 -n 4 --wrap "srun --mpi=pmix -n 4 $work/mpi_hello"
  else
    fail "mpicc: $(cat "$work/mpicc.err")"
  fi
else
  note "no mpicc or no pmix: an MPI program launched by srun is not checked"
fi
# shellcheck disable=SC2016
submit mpirun8 -n 8 --wrap 'mpirun -np $SLURM_NTASKS hostname'
submit held -n 1 --hold --wrap 'echo must not run'

# a request the node can never satisfy is refused at submission (EnforcePartLimits=ALL), not left pending
if out=$(sbatch --parsable -n 100000 --wrap true 2>&1); then
  fail "sbatch -n 100000 was accepted (job $out): impossible jobs would pend forever"
  scancel "${out%%;*}" || true
else
  pass "sbatch -n 100000 refused at submission: $out"
fi
if [[ -n ${ids[held]:-} ]]; then scancel "${ids[held]}"; fi

# ---- wait and check
# wait_job NAME EXPECTED_RC EXPECTED_STATE EXPECTED_EXITCODE: wait-job's verdict for the job
wait_job() {
  local name=$1 want_rc=$2 want_state=$3 want_code=$4 id=${ids[$1]:-} out rc=0 left
  [[ -n $id ]] || return 1
  left=$((${CNNPAR_SLURM_TEST_BUDGET:-90} - (SECONDS - t_begin)))
  ((left > 5)) || left=5
  out=$("$S" wait-job "$id" "$left") || rc=$?
  if [[ $rc == "$want_rc" && $out == *"JobState=$want_state ExitCode=$want_code "* ]]; then
    pass "$name (job $id): $out"
  else
    fail "$name (job $id): wait-job exited $rc with '$out', expected $want_rc, $want_state, $want_code"
    [[ -s $work/$name.out ]] && sed 's/^/    | /' "$work/$name.out" | head -n 40
    return 1
  fi
}
# count_lines NAME PATTERN N: the job's output has exactly N lines matching PATTERN (a whole-line regex)
count_lines() {
  local name=$1 pattern=$2 want=$3 got
  got=$(grep -cx -- "$pattern" "$work/$name.out" 2>/dev/null || true)
  if [[ $got == "$want" ]]; then
    pass "$name output: $want lines matching '$pattern'"
  else
    fail "$name output: ${got:-0} lines matching '$pattern', expected $want"
    sed 's/^/    | /' "$work/$name.out" 2>/dev/null | head -n 40
  fi
}

if wait_job one 0 COMPLETED 0:0; then count_lines one "ntasks=1 host=$host" 1; fi
if wait_job mpirun4 0 COMPLETED 0:0; then count_lines mpirun4 "$host" 4; fi
if wait_job exit3 1 FAILED 3:0; then count_lines exit3 "about to exit 3" 1; fi
if [[ $mpi == pmix ]]; then
  if wait_job srun2 0 COMPLETED 0:0; then count_lines srun2 "$host" 2; fi
else
  note "this Slurm has no pmix plugin (MpiDefault=$mpi): srun checked with --mpi=$mpi only"
  if wait_job srun2 0 COMPLETED 0:0; then count_lines srun2 "$host" 2; fi
fi
if [[ -n ${ids[srun_mpi4]:-} ]] && wait_job srun_mpi4 0 COMPLETED 0:0; then
  count_lines srun_mpi4 "rank [0-3] of 4 sum 4" 4
fi
if wait_job mpirun8 0 COMPLETED 0:0; then count_lines mpirun8 "$host" 8; fi
if wait_job held 1 CANCELLED 0:0; then
  if [[ -e $work/held.out ]]; then fail "held job ran"; else pass "held job cancelled before it ran"; fi
fi
if out=$("$S" wait-job 999999 5); then fail "wait-job on an unknown job exited 0: $out"; else
  pass "wait-job on an unknown job fails: $out"; fi
echo "jobs done $((SECONDS - t_begin)) s after the test began"

# ---- stop: nothing of ours left running
slurm_test_stop
if "$S" status "$state" >/dev/null; then fail "status says running after stop"; else pass "status after stop: not running"; fi
if "$S" stop "$state" >/dev/null 2>&1; then pass "stop again: fine"; else fail "stop when stopped exited non-zero"; fi

slurm_test_end slurm
