#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for tests and demos (docs/slurm.md).
#
#   ./scripts/slurm-local.sh start    # install if missing, start, wait until the node is idle
#   ./scripts/slurm-local.sh env      # print `export SLURM_CONF=...` for srun/sbatch
#   ./scripts/slurm-local.sh status
#   ./scripts/slurm-local.sh stop     # stop the daemons this script started, nothing else
#
# Everything lives in one directory, $INSITU_SLURM_DIR (default
# /tmp/insitu-slurm): slurm.conf, a munge key and socket, state, spool, logs
# and the pid files of the three daemons it starts (munged, slurmctld,
# slurmd).  Nothing under /etc is changed, so a system Slurm or munge is left
# alone; the ports are $INSITU_SLURM_PORT and the next one (default
# 16817-16818, not Slurm's 6817-6818).  `stop` kills only the pids in its own
# pid files, and only when their command line names this directory.
#
# The settings that make Debian's Slurm 22.05 run in a container as root:
# ProctrackType=proctrack/linuxproc and TaskPlugin=task/none (no cgroups),
# SlurmdUser=root, CPUs = the cores the machine has.  Jobs with more tasks
# than CPUs need `srun --overcommit` (else they queue for ever).
set -euo pipefail

DIR="${INSITU_SLURM_DIR:-/tmp/insitu-slurm}"
PORT="${INSITU_SLURM_PORT:-16817}"
CONF="$DIR/slurm.conf"
HOST="$(hostname -s)"
PACKAGES=(slurm-wlm munge)

log() { printf '[slurm-local] %s\n' "$*" >&2; }

# A pid from our pid file, if that process is alive and is ours.
ours() {
  local pidfile="$1" pid
  [ -s "$pidfile" ] || return 1
  pid="$(cat "$pidfile")"
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "$DIR" || return 1
  echo "$pid"
}

running() {
  ours "$DIR/munged.pid" >/dev/null && ours "$DIR/slurmctld.pid" >/dev/null \
    && ours "$DIR/slurmd.pid" >/dev/null
}

install_packages() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null; then
    log "ERROR: Slurm is not installed and there is no apt-get to install it (${missing[*]})"
    return 3
  fi
  log "apt: installing ${missing[*]}"
  local SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  # policy-rc.d or no systemd: the packages' own services do not start, and
  # must not: this script runs its own daemons.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
}

write_config() {
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
  local cpus
  cpus="$(nproc)"
  cat > "$CONF" <<EOF
# Written by scripts/slurm-local.sh: a one-node test cluster in $DIR.
ClusterName=insitu-local
SlurmctldHost=$HOST
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MailProg=/bin/true
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=5
NodeName=$HOST CPUs=$cpus State=UNKNOWN
PartitionName=local Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
  install_packages || exit $?
  if running; then
    log "already running in $DIR"
    return 0
  fi
  stop_daemons quiet
  write_config
  if [ ! -s "$DIR/munge.key" ]; then
    dd if=/dev/urandom of="$DIR/munge.key" bs=1024 count=1 status=none
    chmod 0400 "$DIR/munge.key"
  fi
  chmod 0700 "$DIR"
  munged --force --socket="$DIR/munge.socket" --key-file="$DIR/munge.key" \
    --pid-file="$DIR/munged.pid" --log-file="$DIR/log/munged.log" \
    --seed-file="$DIR/munged.seed"
  slurmctld -f "$CONF" -i
  slurmd -f "$CONF"
  export SLURM_CONF="$CONF"
  local i state=""
  for i in $(seq 1 100); do
    state="$(sinfo -h -N -o '%T' 2>/dev/null | head -n1)"
    [ "$state" = "idle" ] && break
    sleep 0.2
  done
  if [ "$state" != "idle" ]; then
    log "ERROR: the node is '${state:-unknown}' after 20 s, not idle; logs in $DIR/log:"
    tail -n 5 "$DIR"/log/*.log >&2 || true
    stop_daemons quiet
    exit 1
  fi
  log "started in $DIR (node $HOST, $(nproc) CPUs); export SLURM_CONF=$CONF"
}

# Stop what our pid files name (slurmd first, munged last), then wait.
stop_daemons() {
  local quiet="${1:-}" name pid pids=()
  for name in slurmd slurmctld munged; do
    if pid="$(ours "$DIR/$name.pid")"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      [ -n "$quiet" ] || log "stopping $name (pid $pid)"
    fi
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  done
  return 0
}

stop() {
  if running; then
    # Jobs on this cluster first: their step daemons outlive slurmd.
    SLURM_CONF="$CONF" scancel --quiet --full --signal=KILL -u "$(id -un)" 2>/dev/null || true
    sleep 0.5
  fi
  stop_daemons
  # slurmstepd processes of this cluster's jobs (they name its spool directory).
  local pid
  for pid in $(pgrep -f "slurmstepd" 2>/dev/null || true); do
    tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$DIR" && kill -KILL "$pid" 2>/dev/null || true
  done
  rm -f "$DIR"/*.pid
  log "stopped (state kept in $DIR)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if running; then echo "running in $DIR (SLURM_CONF=$CONF)"; else echo "not running"; exit 1; fi ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
