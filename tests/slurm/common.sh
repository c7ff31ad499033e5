# Shared by the Slurm tests (sourced): a private Slurm in a temporary directory, PASS/FAIL counting, and a clean stop.
# After sourcing: root, S (slurm_local.sh), work, state, pass/fail/note. slurm_test_start brings Slurm up (or exits 77
# with "SKIP: ..." where it cannot be installed or started); slurm_test_stop stops it and checks that nothing of this
# test is left running; the EXIT trap stops it in any case and keeps $work for inspection after a failure.

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
S=$root/scripts/slurm_local.sh
t_begin=$SECONDS
passed=0
failed=0
started=0
daemon_pids=()
envline=""

pass() { echo "PASS: $*"; passed=$((passed + 1)); }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
note() { echo "NOTE: $*"; }

work=$(mktemp -d "/tmp/cnnpar-${SLURM_TEST_NAME:-slurm}.XXXXXX")
chmod 0755 "$work"  # munged wants the directories above its socket searchable by all
state=$work/st      # short: Slurm's and munge's socket paths must stay under 107 characters

slurm_test_finish() {
  local rc=$?
  if ((started)); then
    if ((failed || rc)); then
      local f
      for f in "$state"/log/slurmctld.log "$state"/log/slurmd.log "$state"/log/daemons.out; do
        [[ -s $f ]] && { echo "---- tail of $f"; tail -n 30 "$f"; }
      done
    fi
    "$S" stop "$state" 2>&1 | sed 's/^/  /' || true
  fi
  if ((failed || rc)) && [[ $rc != 77 ]]; then
    echo "kept for inspection: $work"
  else
    rm -rf "$work"
  fi
}
trap slurm_test_finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Installs what is missing (Slurm, munge, mpirun for the jobs) and starts the daemons; exports SLURM_CONF.
slurm_test_start() {
  local rc=0 t0=$SECONDS
  "$S" install openmpi-bin || rc=$?
  if ((rc == 77)); then echo "SKIP: Slurm could not be installed (see above)"; exit 77; fi
  ((rc == 0)) || { echo "FAIL: slurm_local.sh install exited $rc"; exit 1; }
  envline=$("$S" start "$state") || rc=$?
  if ((rc == 77)); then echo "SKIP: Slurm could not be started (see above)"; exit 77; fi
  ((rc == 0)) || { echo "FAIL: slurm_local.sh start exited $rc"; exit 1; }
  started=1
  export SLURM_CONF=$state/slurm.conf
  local f
  for f in munge/munged.pid slurmctld.pid slurmd.pid; do daemon_pids+=("$(cat "$state/$f")"); done
  echo "Slurm up in $((SECONDS - t0)) s"
}

# Stops Slurm and checks that none of its daemons, nor any process working in or on $work, is left running (a zombie
# waiting for PID 1 to reap it is not running).
slurm_test_stop() {
  local t0=$SECONDS pid d cwd st alive=()
  if "$S" stop "$state" 2>/dev/null; then pass "stop in $((SECONDS - t0)) s"; else fail "stop exited non-zero"; fi
  started=0
  for pid in "${daemon_pids[@]}"; do
    st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)
    [[ -n $st && $st != Z ]] && alive+=("$pid")
  done
  for d in /proc/[0-9]*; do  # slurmstepd, job and cnnpar_mpi processes of this test
    [[ ${d#/proc/} == "$$" || ${d#/proc/} == "$BASHPID" ]] && continue
    [[ $(awk '{print $3}' "$d/stat" 2>/dev/null) == Z ]] && continue
    cwd=$(readlink "$d/cwd" 2>/dev/null) || continue
    if [[ $cwd == "$work" || $cwd == "$work"/* ]] || tr '\0' ' ' <"$d/cmdline" 2>/dev/null | grep -q -- "$work/"; then
      alive+=("${d#/proc/}")
    fi
  done
  if ((${#alive[@]} == 0)); then pass "no daemon, job or program process left"; else
    fail "left running: $(ps -o pid=,args= -p "$(IFS=,; echo "${alive[*]}")" || true)"; fi
}

# The closing lines; the exit status is 0 only if nothing failed.
slurm_test_end() {
  echo "took $((SECONDS - t_begin)) s"
  echo "$1: $passed passed, $failed failed"
  ((failed == 0))
}
