#!/usr/bin/env bash
# Submit a sweep and, after it, the job that turns its results into the sweep report; print both job ids and where
# the results, the report and the logs will land. Run it on the login node, from any directory.
#
# Usage: jobs/submit_sweep.sh [--strong | --weak | --compare] [OPTIONS] [-- SBATCH_OPTIONS...]
#   --strong (default)      jobs/strong_scaling.sbatch: fixed batch, P = 1, 2, 4, ... up to the task count
#   --weak                  jobs/weak_scaling.sbatch: batch = --batch-per-rank * P
#   --compare               jobs/compare.sbatch: every consolidation x plan at P = the task count (--compare)
#   -n, --ntasks N          tasks of the sweep job = the largest P (default: the job script's #SBATCH --ntasks, 8)
#   --batch B  --batch-per-rank B  --iterations N  --warmup N  --consolidation K[,K]  --plan P[,P]  --np-list L
#   --ranks-per-node K  --launcher mpirun|srun  --bin PATH  --force  --no-verify
#                           passed to the job script (see its header and jobs/lib.sh); unset ones come from the
#                           CNNPAR_* variables of this shell, which sbatch passes on to the jobs, or the defaults
#   --results DIR           results root (default: CNNPAR_RESULTS, else ./results): the sweep writes DIR/<job id>/,
#                           the report goes to DIR/<job id>/report/, the job logs to DIR/
#   --extra "ARGS"          more cnnpar_mpi options (sets CNNPAR_EXTRA_ARGS for the sweep job)
#   --no-analysis           submit the sweep only
#   -- SBATCH_OPTIONS       given to the sweep job's sbatch, e.g. -- -N 2 --ntasks-per-node=16 --exclusive
#
# The analysis job is submitted with --dependency=afterok:<sweep> --kill-on-invalid-dep=yes: if the sweep fails,
# Slurm cancels it (state CANCELLED, reason DependencyNeverSatisfied) instead of leaving it pending forever.
# Another site: export SBATCH_PARTITION, SBATCH_ACCOUNT (and SBATCH_QOS ...), which sbatch applies to both jobs, or
# edit the ##SBATCH lines of the job scripts; CNNPAR_MODULES, CNNPAR_LAUNCHER and the rest reach the jobs from this
# shell's environment.
# Exit status: 0 when both jobs were submitted, 1 when sbatch refused one (its message is shown), 2 for bad usage.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
me=submit_sweep

usage() {  # the header above; on stdout for --help, on stderr after a usage error
  if ((${1:-2} == 0)); then exec 3>&1; else exec 3>&2; fi
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&3
  exit "${1:-2}"
}
die() { echo "$me: error: $1" >&2; exit "${2:-2}"; }

kind=strong
ntasks=
results=${CNNPAR_RESULTS:-}
bin=${CNNPAR_BIN:-}
analysis=1
extra_set=0
extra=
job_args=()
sbatch_args=()
while (($#)); do
  case $1 in
    --strong) kind=strong ;;
    --weak) kind=weak ;;
    --compare) kind=compare ;;
    -n | --ntasks) (($# >= 2)) || die "$1 needs a value"; ntasks=$2; shift ;;
    -n* ) ntasks=${1#-n} ;;
    --ntasks=*) ntasks=${1#*=} ;;
    --results) (($# >= 2)) || die "$1 needs a value"; results=$2; shift ;;
    --results=*) results=${1#*=} ;;
    --bin) (($# >= 2)) || die "$1 needs a value"; bin=$2; shift ;;
    --bin=*) bin=${1#*=} ;;
    --extra) (($# >= 2)) || die "$1 needs a value"; extra=$2; extra_set=1; shift ;;
    --extra=*) extra=${1#*=}; extra_set=1 ;;
    --batch | --batch-per-rank | --iterations | --warmup | --consolidation | --plan | --np-list | --ranks-per-node \
      | --launcher)
      (($# >= 2)) || die "$1 needs a value"
      job_args+=("$1" "$2")
      shift
      ;;
    --batch=* | --batch-per-rank=* | --iterations=* | --warmup=* | --consolidation=* | --plan=* | --np-list=* \
      | --ranks-per-node=* | --launcher=* | --force | --no-verify | --verify | --quiet | --no-quiet)
      job_args+=("$1") ;;
    --no-analysis) analysis=0 ;;
    --) shift; sbatch_args=("$@"); break ;;
    -h | --help) usage 0 ;;
    *) die "unknown option '$1' (--help lists them; sbatch options go after --)" ;;
  esac
  shift
done
[[ -z $ntasks || $ntasks =~ ^[1-9][0-9]*$ ]] || die "--ntasks takes a positive whole number (got '$ntasks')"

case $kind in
  strong) script=$here/strong_scaling.sbatch; what="strong-scaling sweep" ;;
  weak) script=$here/weak_scaling.sbatch; what="weak-scaling sweep" ;;
  compare) script=$here/compare.sbatch; what="consolidation study (--compare)" ;;
esac
command -v sbatch >/dev/null || die "no sbatch on PATH: run this where Slurm's client commands are (a login node)" 1

# Resolve here what the jobs would otherwise guess, so a missing build shows now and not in the job log.
if [[ -n $bin ]]; then
  [[ $bin == /* ]] || bin=$PWD/$bin
elif [[ -x $PWD/build/cnnpar_mpi ]]; then
  bin=$PWD/build/cnnpar_mpi
else
  bin=$repo/build/cnnpar_mpi
fi
[[ -f $bin && -x $bin ]] \
  || die "no executable cnnpar_mpi at $bin: build it (scripts/build.sh) or give --bin / CNNPAR_BIN" 1
results=${results:-$PWD/results}
[[ $results == /* ]] || results=$PWD/$results
mkdir -p "$results"
results=$(cd "$results" && pwd)

submit() {  # sbatch ARGS...: print the job id; sbatch's own message on failure
  local out
  out=$(CNNPAR_REPO=$repo sbatch --parsable "$@" 2>&1) || die "sbatch refused the job: $out" 1
  out=$(tail -n1 <<<"$out")
  out=${out%%;*}
  [[ $out =~ ^[0-9]+$ ]] || die "sbatch printed no job id: $out" 1
  echo "$out"
}
job_log() {  # JOBID: the log path as Slurm has it
  scontrol show job -o "$1" 2>/dev/null | sed -n 's/.* StdOut=\([^ ]*\).*/\1/p'
}

opts=(-o "$results/%x-%j.out")
[[ -n $ntasks ]] && opts+=(--ntasks="$ntasks")
((extra_set)) && export CNNPAR_EXTRA_ARGS=$extra
sweep=$(submit "${opts[@]}" "${sbatch_args[@]}" "$script" --results "$results" --bin "$bin" "${job_args[@]}")
analyze=
analyze_rc=0
if ((analysis)); then
  analyze=$(submit -o "$results/%x-%j.out" --dependency="afterok:$sweep" --kill-on-invalid-dep=yes \
    "$here/analyze.sbatch" "$results/$sweep") || analyze_rc=$?
fi

# Print only once both are in: a reader that stops early (| head) must not leave a sweep without its analysis.
tasks=$(scontrol show job -o "$sweep" 2>/dev/null | sed -n 's/.* NumTasks=\([0-9]*\).*/\1/p' || true)
echo "sweep job:    $sweep  ($what on ${tasks:-?} tasks; ${job_args[*]:-default settings})"
echo "  results:    $results/$sweep/"
echo "  log:        $(job_log "$sweep" || true)"
if ((analyze_rc)); then
  echo "$me: the sweep job $sweep is queued, but not its analysis (see above): scancel $sweep, or later run" \
    "sbatch $here/analyze.sbatch $results/$sweep" >&2
  exit 1
fi
if [[ -n $analyze ]]; then
  echo "analysis job: $analyze  (runs after job $sweep completes successfully; cancelled by Slurm if it fails)"
  echo "  report:     $results/$sweep/report/sweep.md"
  echo "  log:        $(job_log "$analyze" || true)"
fi
echo "watch with:   squeue -j $sweep${analyze:+,$analyze}    or    scontrol show job $sweep"
