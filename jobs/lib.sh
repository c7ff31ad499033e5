# shellcheck shell=bash disable=SC2034  # the variables set here are read by the job scripts
# Shared by the job scripts jobs/*.sbatch, which source it once they have found the repository; not a job script.
# What every knob means is in the header of the job scripts and in docs/cluster.md.
#
# Every setting comes from a script argument (sbatch jobs/X.sbatch --batch 8 ...), else from the environment variable
# named in brackets (sbatch passes the submitter's environment to the job), else from the default:
#   --batch B            [CNNPAR_BATCH, 64]           images per forward pass (single, strong, compare)
#   --batch-per-rank B   [CNNPAR_BATCH_PER_RANK, 8]   weak scaling: batch = B * P
#   --iterations N       [CNNPAR_ITERATIONS]          timed passes (cnnpar_mpi's default, 100, when unset)
#   --warmup N           [CNNPAR_WARMUP]              untimed passes (cnnpar_mpi's default, 10, when unset)
#   --consolidation K    [CNNPAR_CONSOLIDATION, allgatherv]  strong/weak: a comma-separated list, each run per P
#   --plan P             [CNNPAR_PLAN, per-layer]     strong/weak: a comma-separated list, each run per P
#   --np-list LIST       [CNNPAR_NP_LIST]             strong/weak: rank counts, e.g. 1,2,4,8 (default 1, 2, 4, ...
#                                                     up to the allocation's task count, and that count itself)
#   --ranks-per-node K   [CNNPAR_RANKS_PER_NODE]      emulate nodes of K ranks on one machine (cnnpar_mpi option)
#   --launcher L         [CNNPAR_LAUNCHER, mpirun]    mpirun or srun (srun --mpi=$CNNPAR_SRUN_MPI, default pmix)
#   --bin PATH           [CNNPAR_BIN]                 cnnpar_mpi (default build/cnnpar_mpi in the submit dir, else in
#                                                     the repository the script was submitted from)
#   --results DIR        [CNNPAR_RESULTS]             results root (default $SLURM_SUBMIT_DIR/results); this job's
#                                                     files go to DIR/<job id>/
#   --verify/--no-verify [CNNPAR_VERIFY, 1]           pass --verify (exit 3, so a failed job, if a result differs)
#   --quiet/--no-quiet   [CNNPAR_QUIET]               pass --quiet (default: yes for the sweeps and compare, no for
#                                                     single)
#   --force              [CNNPAR_FORCE, 0]            write into a results dir that already holds .h5 files, replacing
#                                                     files of the same name (job ids repeat after a cold start of
#                                                     the local Slurm)
#   any other argument, and the words of [CNNPAR_EXTRA_ARGS], go to cnnpar_mpi as they are (split at blanks)
# Launcher extras: CNNPAR_MPIRUN_ARGS, CNNPAR_SRUN_ARGS (words added after mpirun -np P / srun -n P), CNNPAR_SRUN_MPI.
# Site set-up: CNNPAR_MODULES ("module load" these first), e.g. CNNPAR_MODULES="openmpi/4.1 hdf5".

cnnpar_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }
# A configuration error: exit 2 (cnnpar_mpi's code for a bad command line), so the job ends FAILED with 2:0.
cnnpar_die() {
  echo "cnnpar job: error: $*" >&2
  exit 2
}

# cnnpar_parse_args QUIET_DEFAULT "$@": sets BATCH BATCH_PER_RANK ITERATIONS WARMUP CONSOLIDATION PLAN NP_LIST
# RANKS_PER_NODE LAUNCHER BIN RESULTS VERIFY QUIET FORCE and the array EXTRA (arguments for cnnpar_mpi).
cnnpar_parse_args() {
  QUIET=${CNNPAR_QUIET:-$1}
  shift
  BATCH=${CNNPAR_BATCH:-64}
  BATCH_PER_RANK=${CNNPAR_BATCH_PER_RANK:-8}
  ITERATIONS=${CNNPAR_ITERATIONS:-}
  WARMUP=${CNNPAR_WARMUP:-}
  CONSOLIDATION=${CNNPAR_CONSOLIDATION:-allgatherv}
  PLAN=${CNNPAR_PLAN:-per-layer}
  NP_LIST=${CNNPAR_NP_LIST:-}
  RANKS_PER_NODE=${CNNPAR_RANKS_PER_NODE:-}
  LAUNCHER=${CNNPAR_LAUNCHER:-mpirun}
  BIN=${CNNPAR_BIN:-}
  RESULTS=${CNNPAR_RESULTS:-}
  VERIFY=${CNNPAR_VERIFY:-1}
  FORCE=${CNNPAR_FORCE:-0}
  EXTRA=()
  read -r -a EXTRA <<<"${CNNPAR_EXTRA_ARGS:-}"
  local opt val
  while (($#)); do
    opt=$1
    val=
    case $opt in
      --*=*) val=${opt#*=}; opt=${opt%%=*} ;;
    esac
    case $opt in
      --batch | --batch-per-rank | --iterations | --warmup | --consolidation | --plan | --np-list | --ranks-per-node \
        | --launcher | --bin | --results)
        if [[ $1 != *=* ]]; then
          (($# >= 2)) || cnnpar_die "$opt needs a value"
          val=$2
          shift
        fi
        case $opt in
          --batch) BATCH=$val ;;
          --batch-per-rank) BATCH_PER_RANK=$val ;;
          --iterations) ITERATIONS=$val ;;
          --warmup) WARMUP=$val ;;
          --consolidation) CONSOLIDATION=$val ;;
          --plan) PLAN=$val ;;
          --np-list) NP_LIST=$val ;;
          --ranks-per-node) RANKS_PER_NODE=$val ;;
          --launcher) LAUNCHER=$val ;;
          --bin) BIN=$val ;;
          --results) RESULTS=$val ;;
        esac
        ;;
      --verify) VERIFY=1 ;;
      --no-verify) VERIFY=0 ;;
      --quiet | -q) QUIET=1 ;;
      --no-quiet) QUIET=0 ;;
      --force) FORCE=1 ;;
      --) shift; EXTRA+=("$@"); break ;;
      *) EXTRA+=("$1") ;;
    esac
    shift
  done
  local name
  for name in BATCH BATCH_PER_RANK ITERATIONS WARMUP RANKS_PER_NODE; do
    [[ -z ${!name} || ${!name} =~ ^[0-9]+$ ]] || cnnpar_die "$name must be a whole number (got '${!name}')"
  done
  [[ $LAUNCHER == mpirun || $LAUNCHER == srun ]] || cnnpar_die "launcher must be mpirun or srun (got '$LAUNCHER')"
  [[ $VERIFY == [01] && $QUIET == [01] && $FORCE == [01] ]] \
    || cnnpar_die "CNNPAR_VERIFY, CNNPAR_QUIET and CNNPAR_FORCE take 0 or 1"
}

# cnnpar_list "a,b c" -> one word a line (comma- or blank-separated)
cnnpar_list() { sed 's/[, ]\{1,\}/\n/g; s/^\n//' <<<"$1" | sed '/^$/d'; }

# The allocation's task count: SLURM_NTASKS, else the sum of SLURM_TASKS_PER_NODE ("4(x2),3" = 11).
cnnpar_ntasks() {
  if [[ -n ${SLURM_NTASKS:-} ]]; then echo "$SLURM_NTASKS"; return; fi
  local sum=0 part n reps
  local IFS=,
  for part in ${SLURM_TASKS_PER_NODE:-}; do
    n=${part%%(*}
    reps=1
    [[ $part == *'(x'* ]] && { reps=${part#*(x}; reps=${reps%)}; }
    sum=$((sum + n * reps))
  done
  ((sum > 0)) || cnnpar_die "cannot tell the allocation's task count (no SLURM_NTASKS or SLURM_TASKS_PER_NODE)"
  echo "$sum"
}

# cnnpar_init: check we run inside Slurm, load modules, find the binary and the launcher, make the results dir.
# Sets NTASKS, BIN (absolute), OUTDIR (RESULTS/<job id>, absolute). Needs REPO (set by the job script).
cnnpar_init() {
  [[ -n ${SLURM_JOB_ID:-} ]] || cnnpar_die "not inside a Slurm job: submit with sbatch (or run inside salloc)"
  NTASKS=$(cnnpar_ntasks)
  local submit=${SLURM_SUBMIT_DIR:-$PWD}

  if [[ -n ${CNNPAR_MODULES:-} ]]; then
    if ! type module >/dev/null 2>&1; then
      set +eu
      # shellcheck disable=SC1091  # the site's module system
      source /etc/profile >/dev/null 2>&1
      set -eu
    fi
    type module >/dev/null 2>&1 || cnnpar_die "CNNPAR_MODULES is set but there is no 'module' command"
    # shellcheck disable=SC2086  # a list of modules
    module load $CNNPAR_MODULES
  fi

  if [[ -n $BIN ]]; then
    [[ $BIN == /* ]] || BIN=$submit/$BIN
  else
    local c
    for c in "$submit/build/cnnpar_mpi" "$REPO/build/cnnpar_mpi"; do
      if [[ -x $c ]]; then BIN=$c; break; fi
    done
    [[ -n $BIN ]] || BIN=$REPO/build/cnnpar_mpi
  fi
  [[ -f $BIN && -x $BIN ]] \
    || cnnpar_die "no executable cnnpar_mpi at $BIN: build it (scripts/build.sh) or set CNNPAR_BIN"

  if ((EUID == 0)); then  # Open MPI's mpirun refuses root without these (containers, CI)
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  fi
  MPIRUN_ARGS=()
  SRUN_ARGS=()
  read -r -a MPIRUN_ARGS <<<"${CNNPAR_MPIRUN_ARGS:-}"
  read -r -a SRUN_ARGS <<<"${CNNPAR_SRUN_ARGS:-}"
  SRUN_MPI=${CNNPAR_SRUN_MPI:-pmix}
  command -v "$LAUNCHER" >/dev/null \
    || cnnpar_die "launcher '$LAUNCHER' not found on PATH (load your MPI module: CNNPAR_MODULES)"

  local root=${RESULTS:-$submit/results}
  [[ $root == /* ]] || root=$submit/$root
  OUTDIR=$root/$SLURM_JOB_ID
  if ((!FORCE)) && compgen -G "$OUTDIR/*.h5" >/dev/null; then
    cnnpar_die "$OUTDIR already holds results of an earlier job with id $SLURM_JOB_ID (job ids restart after" \
      "a cold start of the local Slurm): move them away, use another results root (CNNPAR_RESULTS)," \
      "or set CNNPAR_FORCE=1"
  fi
  mkdir -p "$OUTDIR"
}

# The cnnpar_mpi arguments every run gets: iterations, warmup, ranks per node, verify, quiet, force, the extras.
cnnpar_common_args() {
  COMMON=()
  [[ -n $ITERATIONS ]] && COMMON+=(--iterations "$ITERATIONS")
  [[ -n $WARMUP ]] && COMMON+=(--warmup "$WARMUP")
  [[ -n $RANKS_PER_NODE ]] && COMMON+=(--ranks-per-node "$RANKS_PER_NODE")
  ((VERIFY)) && COMMON+=(--verify)
  ((QUIET)) && COMMON+=(--quiet)
  ((FORCE)) && COMMON+=(--force)
  COMMON+=("${EXTRA[@]}")
}

# cnnpar_np_list: the rank counts of a sweep, checked against the allocation.
cnnpar_np_list() {
  local p out=()
  if [[ -n $NP_LIST ]]; then
    mapfile -t out < <(cnnpar_list "$NP_LIST")
  else
    for ((p = 1; p <= NTASKS; p *= 2)); do out+=("$p"); done
    ((out[-1] == NTASKS)) || out+=("$NTASKS")
  fi
  ((${#out[@]})) || cnnpar_die "empty rank-count list"
  for p in "${out[@]}"; do
    [[ $p =~ ^[1-9][0-9]*$ ]] || cnnpar_die "rank count '$p' is not a positive whole number"
    ((p <= NTASKS)) || cnnpar_die "rank count $p is more than the allocation's $NTASKS tasks (sbatch -n)"
  done
  echo "${out[*]}"
}

# Nodes an srun step of P tasks needs when it fills nodes one after another, as mpirun does (by slot).
cnnpar_nodes_for() {
  local np=$1 tpn=${SLURM_TASKS_PER_NODE:-$1} nodes
  tpn=${tpn%%[(,]*}
  [[ $tpn =~ ^[1-9][0-9]*$ ]] || tpn=$np
  nodes=$(((np + tpn - 1) / tpn))
  ((nodes <= ${SLURM_JOB_NUM_NODES:-$nodes})) || nodes=$SLURM_JOB_NUM_NODES
  echo "$nodes"
}

# What the job log starts with.
cnnpar_header() {
  local what=$1 commit
  commit=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)
  cnnpar_log "cnnpar $what: job $SLURM_JOB_ID (${SLURM_JOB_NAME:-?}) on ${SLURM_JOB_NODELIST:-$(hostname)}," \
    "$NTASKS tasks (${SLURM_TASKS_PER_NODE:-?} per node)"
  echo "  binary:    $BIN (repository $REPO, commit $commit)"
  local launch=("$LAUNCHER" "${MPIRUN_ARGS[@]}")
  [[ $LAUNCHER == srun ]] && launch=(srun --mpi="$SRUN_MPI" "${SRUN_ARGS[@]}")
  echo "  launcher:  ${launch[*]} ($("$LAUNCHER" --version 2>/dev/null | head -n1))"
  echo "  results:   $OUTDIR/"
  echo "  arguments: ${COMMON[*]}"
}

# cnnpar_run P ARGS...: cnnpar_mpi on P ranks through the launcher. A failed run ends the job with the run's exit
# status (so sacct/scontrol show FAILED with that code, and dependent jobs do not start).
cnnpar_run() {
  local np=$1 rc=0 t0=$SECONDS cmd
  shift
  case $LAUNCHER in
    mpirun) cmd=(mpirun -np "$np" "${MPIRUN_ARGS[@]}" "$BIN" "$@") ;;
    srun)
      cmd=(srun --mpi="$SRUN_MPI" --ntasks="$np" --nodes="$(cnnpar_nodes_for "$np")" "${SRUN_ARGS[@]}" "$BIN" "$@")
      ;;
  esac
  # More ranks on this node than it has cores (the local Slurm declares 8 CPUs on a 2-core machine): Open MPI believes
  # the slots Slurm gives it and busy-polls, so ranks spin on each other's cores and a pass gets ~40x slower. Let them
  # yield instead, unless the user chose.
  local here=$np tpn=${SLURM_TASKS_PER_NODE:-$np} cores
  tpn=${tpn%%[(,]*}
  [[ $tpn =~ ^[0-9]+$ ]] && ((tpn < here)) && here=$tpn
  cores=$(nproc 2>/dev/null || echo "$here")
  if ((here > cores)) && [[ -z ${OMPI_MCA_mpi_yield_when_idle:-} ]]; then
    cnnpar_log "P=$np: $here ranks on $(hostname -s) with $cores cores: OMPI_MCA_mpi_yield_when_idle=1 for this run"
    cmd=(env OMPI_MCA_mpi_yield_when_idle=1 "${cmd[@]}")
  fi
  cnnpar_log "P=$np: ${cmd[*]}"
  "${cmd[@]}" || rc=$?
  if ((rc)); then
    cnnpar_log "P=$np: FAILED with exit status $rc after $((SECONDS - t0)) s; ending the job"
    exit "$rc"
  fi
  cnnpar_log "P=$np: done in $((SECONDS - t0)) s"
}

# cnnpar_default_name P B CONSOLIDATION PLAN: the name cnnpar_mpi gives a results file in an --output directory
# (cnnpar_np<P>_b<B>_compare.h5 when --compare is among the extra arguments).
cnnpar_default_name() {
  local a
  for a in "${EXTRA[@]}"; do
    if [[ $a == --compare ]]; then echo "cnnpar_np$1_b$2_compare.h5"; return; fi
  done
  echo "cnnpar_np$1_b$2_$3_$4.h5"
}

# cnnpar_expect FILE: the run left its results file (an --output that went elsewhere is a failure too).
cnnpar_expect() {
  [[ -s $1 ]] || { cnnpar_log "expected results file $1 is missing"; exit 1; }
  echo "  wrote $1"
}

cnnpar_footer() {
  cnnpar_log "done: $(find "$OUTDIR" -maxdepth 1 -name '*.h5' | wc -l) results file(s) in $OUTDIR/"
}
