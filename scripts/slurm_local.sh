#!/usr/bin/env bash
# A private single-machine Slurm cluster (one controller, one compute node, its own munged) for tests and CI.
# Everything it writes (slurm.conf, munge key and socket, spool and state dirs, logs, pid files) lives in one
# STATE_DIR, so it clobbers no system Slurm or munge (the one file outside it: the lock /tmp/cnnpar-slurm-ports.lock,
# which keeps instances started side by side off each other's ports). Settings and why: docs/slurm-local.md.
#
# Usage: scripts/slurm_local.sh COMMAND [ARGS]
#   install [PKG...]          apt-get install slurmctld, slurmd, slurm-client, munge (and any PKG given) if missing
#   start [STATE_DIR]         install if needed, write the config, start munged + slurmctld + slurmd, wait until the
#                             node is idle, print `export SLURM_CONF=...` on stdout (all else goes to stderr), so:
#                               eval "$(scripts/slurm_local.sh start)"
#   status [STATE_DIR]        show the daemons, sinfo and squeue; exit 0 if all three daemons run, 3 if not
#   stop [STATE_DIR]          cancel the jobs, stop the daemons this script started (by their pid files), and any
#                             job processes they left; fine when nothing runs
#   env [STATE_DIR]           print the export line again
#   wait-job JOBID [TIMEOUT]  poll `scontrol show job` every 0.25 s until the job ends (TIMEOUT s, default 600);
#                             print "JobId=N JobState=S ExitCode=E:S Reason=R"; exit 0 only for COMPLETED with
#                             ExitCode=0:0, 1 for any other end (FAILED, CANCELLED, TIMEOUT, ..., and PENDING with
#                             Reason=DependencyNeverSatisfied: it will never run), 2 for an unknown job, 124 if still
#                             not ended at TIMEOUT. Uses $SLURM_CONF, else STATE_DIR's config.
#
# STATE_DIR defaults to $CNNPAR_SLURM_STATE_DIR, else /tmp/cnnpar-slurm-$USER.
# Exit 77 (with a message) when Slurm cannot be installed or started, so a test can skip instead of failing.
# Environment knobs: CNNPAR_SLURM_CPUS (CPUs the node declares, default 8, oversubscribing the real cores),
# CNNPAR_SLURM_PORT (first slurmctld port to try, default 6817; slurmd takes the next one; busy ports are skipped),
# CNNPAR_SLURM_START_TIMEOUT (seconds to wait for an idle node, default 60), CNNPAR_SLURM_NO_INSTALL=1 (never apt).
set -euo pipefail

readonly ME=slurm_local
readonly SKIP=77
readonly PKGS=(slurmctld slurmd slurm-client munge)
NODE=$(uname -n)
NODE=${NODE%%.*}  # the short host name: slurmctld insists that SlurmctldHost names this machine

log() { echo "$ME: $*" >&2; }
die() { echo "$ME: error: $*" >&2; exit 1; }
unavailable() { echo "$ME: Slurm unavailable: $*" >&2; exit "$SKIP"; }

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit "${1:-2}"; }

# ---------------------------------------------------------------------------------------------------------------
# paths and process helpers

state_dir_from() {  # $1 = optional dir; prints an absolute path (the dir need not exist yet)
  local d=${1:-${CNNPAR_SLURM_STATE_DIR:-/tmp/cnnpar-slurm-$(id -un)}}
  [[ $d == /* ]] || d=$PWD/$d
  echo "${d%/}"
}

# The pid in $1's pid file, if that process is alive and its command line names this state dir (so a recycled pid
# or somebody else's daemon is never taken for ours).
live_pid() {
  local pidfile=$1 pid cmdline
  [[ -s $pidfile ]] || return 1
  pid=$(tr -dc '0-9' <"$pidfile")
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$STATE/"* ]] || return 1
  echo "$pid"
}

# Send TERM to a pid, wait up to $2 seconds, then KILL.
terminate() {
  local pid=$1 secs=${2:-10} i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    # a zombie (our own child not reaped yet) counts as gone
    [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && return 0
    sleep 0.1
  done
  log "pid $pid ignored SIGTERM for ${secs}s: SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

# Pids of every descendant of the given pids (children before their parents is not needed: we SIGKILL all).
descendants() {
  local -A kids=()
  local stat pid ppid
  for stat in /proc/[0-9]*/stat; do
    read -r pid _ _ ppid _ <"$stat" 2>/dev/null || continue
    kids[$ppid]+=" $pid"
  done
  local queue=("$@") p
  while ((${#queue[@]})); do
    p=${queue[0]}
    queue=("${queue[@]:1}")
    for pid in ${kids[$p]:-}; do
      echo "$pid"
      queue+=("$pid")
    done
  done
}

# slurmstepd processes of this instance: they keep the working directory slurmd gave them, our log dir. (Not the
# environment: slurmstepd writes its process title over it.)
our_stepds() {
  local d cwd
  for d in /proc/[0-9]*; do
    [[ $(cat "$d/comm" 2>/dev/null) == slurmstepd ]] || continue
    cwd=$(readlink "$d/cwd" 2>/dev/null) || continue
    [[ $cwd == "$STATE" || $cwd == "$STATE"/* ]] && echo "${d#/proc/}"
  done
  return 0
}

listening_ports() {  # TCP ports in LISTEN state, IPv4 and IPv6
  local f line hex
  for f in /proc/net/tcp /proc/net/tcp6; do
    [[ -r $f ]] || continue
    while read -r _ line _ st _; do
      [[ $st == 0A ]] || continue
      hex=${line##*:}
      echo $((16#$hex))
    done < <(tail -n +2 "$f")
  done
}

pick_port() {  # first p >= $1 with p and p+1 both free
  local p=$1 busy
  busy=" $(listening_ports | tr '\n' ' ') "
  while [[ $busy == *" $p "* || $busy == *" $((p + 1)) "* ]]; do p=$((p + 2)); done
  echo "$p"
}

# ---------------------------------------------------------------------------------------------------------------
# install

missing_pkgs() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
  return 0
}

cmd_install() {
  if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
    unavailable "not a Debian system (no apt-get)"
  fi
  local missing
  mapfile -t missing < <(missing_pkgs "${PKGS[@]}" "$@")
  if ((${#missing[@]} == 0)); then
    log "packages present: ${PKGS[*]}${*:+ $*}"
    return 0
  fi
  [[ ${CNNPAR_SLURM_NO_INSTALL:-0} == 1 ]] && unavailable "missing ${missing[*]} and CNNPAR_SLURM_NO_INSTALL=1"
  local sudo=()
  if ((EUID != 0)); then
    if ! command -v sudo >/dev/null || ! sudo -n true 2>/dev/null; then
      unavailable "need root or sudo to install ${missing[*]}"
    fi
    sudo=(sudo -n)
  fi
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  local apt=("${sudo[@]}" apt-get -q -o DPkg::Lock::Timeout=300)
  "${apt[@]}" update >&2 || unavailable "apt-get update failed"
  "${apt[@]}" install -y --no-install-recommends "${missing[@]}" </dev/null >&2 \
    || unavailable "apt-get install ${missing[*]} failed"
}

# ---------------------------------------------------------------------------------------------------------------
# start

write_conf() {  # $1 = MpiDefault
  local host=$NODE cpus=${CNNPAR_SLURM_CPUS:-8} mem
  [[ $cpus =~ ^[1-9][0-9]*$ ]] || die "CNNPAR_SLURM_CPUS must be a positive integer (got '$cpus')"
  mem=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
  cat >"$STATE/slurm.conf.new" <<EOF
# Written by scripts/slurm_local.sh start; rewritten at every start. See docs/slurm-local.md.
ClusterName=cnnpar
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$STATE/munge/munge.socket
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
PlugStackConfig=$STATE/plugstack.conf
TmpFS=$STATE/tmp
# no cgroups in the container, no accounting daemon
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=$1
# CPUs as the only consumable, so several small jobs share the node
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
# trust the CPUs declared below rather than the hardware (else the node drains as "Low CPUs")
SlurmdParameters=config_overrides
# a request the node can never satisfy is rejected by sbatch instead of pending forever
EnforcePartLimits=ALL
# a node that was down comes back as soon as its slurmd registers
ReturnToService=2
# job ids of instances running side by side differ: Open MPI launched by srun names its shared memory after the job
# id, and two jobs with the same id on one host crash each other
FirstJobId=$FIRST_JOB_ID
# keep finished jobs visible to scontrol (wait-job) for 10 minutes
MinJobAge=600
# seconds between SIGTERM and SIGKILL when a job is cancelled or times out
KillWait=5
InactiveLimit=0
Waittime=0
NodeName=$host NodeAddr=127.0.0.1 NodeHostname=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  mv -f "$STATE/slurm.conf.new" "$STATE/slurm.conf"
}

# Run a command that daemonizes itself, with no stdin, output to the log and no descriptor of ours past stderr: a
# daemon holding the caller's pipe (ctest, $(...)) or our lock file open would hang the caller or the next stop.
launch() {
  (
    for fd in "/proc/$BASHPID/fd"/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
    done
    exec "$@"
  ) </dev/null >>"$STATE/log/daemons.out" 2>&1
}

print_env() { echo "export SLURM_CONF=$STATE/slurm.conf"; }

all_running() { live_pid "$STATE/munge/munged.pid" >/dev/null && live_pid "$STATE/slurmctld.pid" >/dev/null \
  && live_pid "$STATE/slurmd.pid" >/dev/null; }

node_state() {  # empty while slurmctld does not answer (or is not ours: another munge key)
  SLURM_CONF=$STATE/slurm.conf timeout 10 sinfo -h -N -n "$NODE" -o %T 2>/dev/null | head -n1 || true
}

start_failed() {  # $1 = message; show the logs, take down what started, exit 77
  local f
  for f in "$STATE"/log/*.log "$STATE"/munge/munged.log; do
    [[ -s $f ]] || continue
    echo "---- tail of $f" >&2
    tail -n 25 "$f" >&2
  done
  stop_all >&2 || true
  trap - EXIT
  unavailable "$1 (state dir $STATE)"
}

start_exit() {
  local rc=$?
  if ((rc)); then
    log "start failed (exit $rc): stopping what it started"
    stop_all >&2 || true
  fi
}

cmd_start() {
  ((EUID == 0)) || unavailable "the local Slurm needs root (slurmd runs jobs as their submitter)"
  cmd_install
  local b
  for b in munged mungekey slurmctld slurmd sinfo sbatch scontrol; do
    command -v "$b" >/dev/null || unavailable "$b not found after install"
  done

  # Unix socket paths have at most 107 characters; the longest Slurm makes here is
  # STATE/slurmd/stepd.slurm.pmix.JOBID.STEPID (or STATE/slurmd/NODE_JOBID.STEPID)
  if ((${#STATE} + 45 > 107 || ${#STATE} + 30 + ${#NODE} > 107)); then
    die "state dir path too long for Slurm's Unix sockets (${#STATE} characters): use a shorter one, e.g. under /tmp"
  fi
  mkdir -p "$STATE"
  chmod 0755 "$STATE"
  # munged wants every directory above its socket searchable by all (a mktemp -d parent is 0700)
  local up=$STATE
  while up=$(dirname "$up") && [[ $up != / ]]; do
    [[ $(( 8#$(stat -c %a "$up") & 1 )) == 1 ]] \
      || die "munged refuses a socket under $up (mode $(stat -c %a "$up")): chmod o+x it or use another state dir"
  done
  exec 9>"$STATE/.lock"
  flock -w 120 9 || die "another slurm_local.sh holds $STATE/.lock"

  local st=
  # (sinfo only once the daemons run: with no slurmctld it retries for ~10 s) idle, mixed, allocated, completing:
  # usable; empty, down*, drain*, fail*, idle* (no answer): not
  if all_running; then st=$(node_state); fi
  if [[ -n $st && $st != *[*~#]* && $st != down* && $st != drain* && $st != fail* ]]; then
    log "already running in $STATE"
    print_env
    return 0
  fi
  stop_all >&2  # whatever part of an earlier instance is left
  # from here on, any unexpected exit takes down what was started
  trap start_exit EXIT
  local t0=$SECONDS
  rm -rf "$STATE/ctld"  # with -c below: no jobs, node states or job id counter from an earlier run
  mkdir -p "$STATE"/{munge,ctld,slurmd,log,tmp}
  chmod 0700 "$STATE/ctld" "$STATE/slurmd"
  chmod 0755 "$STATE/munge"
  : >"$STATE/plugstack.conf"
  rm -f "$STATE"/log/*.log "$STATE/munge/munged.log"

  # munged: a private one on its own key and socket (root; see the docs for why not the munge user)
  [[ -s $STATE/munge/munge.key ]] || mungekey --create --keyfile="$STATE/munge/munge.key" >&2 \
    || start_failed "mungekey failed"
  chmod 0600 "$STATE/munge/munge.key"
  launch munged --key-file="$STATE/munge/munge.key" --socket="$STATE/munge/munge.socket" \
    --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/munged.log" \
    --seed-file="$STATE/munge/munged.seed" \
    || start_failed "munged did not start"
  munge -n -S "$STATE/munge/munge.socket" | unmunge -S "$STATE/munge/munge.socket" >/dev/null 2>&1 \
    || start_failed "munged does not answer"

  # Instances started at the same moment must not pick the same free ports: hold a machine-wide lock from the
  # choice until slurmctld and slurmd listen (the one file this script writes outside STATE_DIR)
  exec 8>>/tmp/cnnpar-slurm-ports.lock
  flock -w 120 8 || die "another slurm_local.sh start holds /tmp/cnnpar-slurm-ports.lock"
  PORT=$(pick_port "${CNNPAR_SLURM_PORT:-6817}")
  local slot=$(((PORT - 6817) / 2))
  FIRST_JOB_ID=$(((${slot#-} % 60) * 1000000 + 1))
  # MpiDefault: pmix if this Slurm has it (Debian's does), else none
  write_conf none
  local mpi=none plugins
  plugins=$(SLURM_CONF=$STATE/slurm.conf srun --mpi=list 2>&1 || true)
  if grep -qw pmix <<<"$plugins"; then mpi=pmix; fi
  write_conf "$mpi"

  export SLURM_CONF=$STATE/slurm.conf
  # -c: a cold start (no jobs or node states from an earlier run)
  launch slurmctld -f "$SLURM_CONF" -c || start_failed "slurmctld did not start"
  launch slurmd -f "$SLURM_CONF" -N "$NODE" || start_failed "slurmd did not start"

  local deadline=$((SECONDS + ${CNNPAR_SLURM_START_TIMEOUT:-60}))
  st=
  while ((SECONDS < deadline)); do
    st=$(node_state)
    [[ $st == idle ]] && break
    all_running || { sleep 0.5; all_running || start_failed "a daemon died during start-up"; }
    sleep 0.2
  done
  [[ $st == idle ]] || start_failed "node $NODE not idle after ${CNNPAR_SLURM_START_TIMEOUT:-60}s (state '${st:-none}')"
  exec 8>&-  # the port lock
  trap - EXIT
  print_env >"$STATE/env.sh"
  log "up in $((SECONDS - t0))s: node $NODE idle, ${CNNPAR_SLURM_CPUS:-8} CPUs, MpiDefault=$mpi, ports $PORT/$((PORT + 1)), state $STATE"
  print_env
}

# ---------------------------------------------------------------------------------------------------------------
# stop

stop_all() {
  local conf=$STATE/slurm.conf pid ctld slurmd_pid
  ctld=$(live_pid "$STATE/slurmctld.pid" || true)
  slurmd_pid=$(live_pid "$STATE/slurmd.pid" || true)
  if [[ -n $ctld && -n $slurmd_pid && -r $conf ]]; then
    # cancel the jobs and give them KillWait (5 s) and a little to end the Slurm way
    local jobs i
    mapfile -t jobs < <(SLURM_CONF=$conf timeout 10 squeue -h -o %i 2>/dev/null || true)
    if ((${#jobs[@]})); then
      log "cancelling jobs: ${jobs[*]}"
      SLURM_CONF=$conf timeout 10 scancel "${jobs[@]}" 2>/dev/null || true
      for ((i = 0; i < 80; i++)); do
        [[ -z $(SLURM_CONF=$conf timeout 10 squeue -h -o %i 2>/dev/null) && -z $(our_stepds) ]] && break
        sleep 0.1
      done
    fi
  fi
  if [[ -n $slurmd_pid ]]; then log "stopping slurmd ($slurmd_pid)"; terminate "$slurmd_pid" 10; fi
  # job processes that outlived slurmd: their slurmstepd and everything below it
  local stepds left
  mapfile -t stepds < <(our_stepds)
  if ((${#stepds[@]})); then
    mapfile -t left < <(descendants "${stepds[@]}")
    log "killing leftover job processes: slurmstepd ${stepds[*]}, below them: ${left[*]:-none}"
    kill -KILL "${left[@]}" "${stepds[@]}" 2>/dev/null || true
  fi
  if [[ -n $ctld ]]; then log "stopping slurmctld ($ctld)"; terminate "$ctld" 10; fi
  pid=$(live_pid "$STATE/munge/munged.pid" || true)
  if [[ -n $pid ]]; then log "stopping munged ($pid)"; terminate "$pid" 10; fi
  rm -f "$STATE/slurmd.pid" "$STATE/slurmctld.pid" "$STATE/munge/munged.pid" "$STATE/env.sh"
}

cmd_stop() {
  if [[ ! -d $STATE ]]; then
    log "nothing to stop: no $STATE"
    return 0
  fi
  exec 9>"$STATE/.lock"
  flock -w 120 9 || die "another slurm_local.sh holds $STATE/.lock"
  stop_all
  log "stopped ($STATE kept: logs in $STATE/log)"
}

# ---------------------------------------------------------------------------------------------------------------
# status, wait-job

cmd_status() {
  local name file pid ok=0
  for name in munged slurmctld slurmd; do
    file=$STATE/$name.pid
    [[ $name == munged ]] && file=$STATE/munge/munged.pid
    if pid=$(live_pid "$file"); then echo "$name: running (pid $pid)"; else echo "$name: not running"; ok=3; fi
  done
  if ((ok == 0)); then
    echo "SLURM_CONF=$STATE/slurm.conf"
    SLURM_CONF=$STATE/slurm.conf timeout 10 sinfo -N -o '%N %T %c %m %P' || ok=3
    SLURM_CONF=$STATE/slurm.conf timeout 10 squeue || ok=3
  fi
  return "$ok"
}

cmd_wait_job() {
  local id=${1:-} limit=${2:-600}
  [[ $id =~ ^[0-9]+(_[0-9]+)?$ ]] || die "wait-job: JOBID must be a job number (got '$id')"
  [[ $limit =~ ^[0-9]+$ ]] || die "wait-job: TIMEOUT must be whole seconds (got '$limit')"
  export SLURM_CONF=${SLURM_CONF:-$STATE/slurm.conf}
  [[ -r $SLURM_CONF ]] || die "wait-job: no $SLURM_CONF (is the local Slurm started?)"
  local deadline=$((SECONDS + limit)) out state code reason errors=0
  while :; do
    if out=$(timeout 15 scontrol show job -o "$id" 2>&1); then
      errors=0
      state=$(sed -n 's/.* JobState=\([^ ]*\).*/\1/p' <<<"$out")
      code=$(sed -n 's/.* ExitCode=\([^ ]*\).*/\1/p' <<<"$out")
      reason=$(sed -n 's/.* Reason=\([^ ]*\).*/\1/p' <<<"$out")
      # a job whose dependency can never be met (afterok on a job that failed, without --kill-on-invalid-dep)
      # stays PENDING with this reason forever: an end, not something to wait for
      if [[ $state == PENDING && $reason == DependencyNeverSatisfied ]]; then
        echo "JobId=$id JobState=$state ExitCode=$code Reason=$reason"
        return 1
      fi
      case $state in
        PENDING | RUNNING | CONFIGURING | COMPLETING | SUSPENDED | REQUEUED | REQUEUE_HOLD | REQUEUE_FED | RESIZING \
          | SIGNALING | STAGE_OUT | STOPPED | SPECIAL_EXIT | RESV_DEL_HOLD | "") ;;
        *)
          echo "JobId=$id JobState=$state ExitCode=$code Reason=$reason"
          [[ $state == COMPLETED && $code == 0:0 ]] && return 0
          return 1
          ;;
      esac
    elif grep -qi "invalid job id" <<<"$out"; then
      echo "JobId=$id JobState=UNKNOWN (not known to slurmctld: never submitted, or ended over MinJobAge ago)"
      return 2
    else
      errors=$((errors + 1))
      ((errors < 20)) || die "wait-job: scontrol keeps failing: $out"
    fi
    if ((SECONDS >= deadline)); then
      echo "JobId=$id JobState=${state:-UNKNOWN} ExitCode=${code:-?} Reason=${reason:-?} (still not ended after ${limit}s)"
      return 124
    fi
    sleep 0.25
  done
}

# ---------------------------------------------------------------------------------------------------------------

cmd=${1:-}
(($#)) && shift
case $cmd in
  install) cmd_install "$@" ;;
  start) STATE=$(state_dir_from "${1:-}"); cmd_start ;;
  stop) STATE=$(state_dir_from "${1:-}"); cmd_stop ;;
  status) STATE=$(state_dir_from "${1:-}"); cmd_status ;;
  env) STATE=$(state_dir_from "${1:-}"); [[ -r $STATE/slurm.conf ]] || die "no $STATE/slurm.conf"; print_env ;;
  wait-job) STATE=$(state_dir_from ""); cmd_wait_job "$@" ;;
  -h | --help | help) usage 0 ;;
  *) usage ;;
esac
