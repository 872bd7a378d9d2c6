# shellcheck shell=bash
# A private single-node SLURM cluster (Debian's slurm-wlm) in a directory, for
# the integration test (tests/slurm/) and scripts/slurm-demo.sh. Source it:
#
#   source scripts/slurm-cluster.sh
#   slurm_cluster_install || exit 77     # apt-get install slurm-wlm when missing (1: cannot)
#   slurm_cluster_start "$DIR"           # slurmctld + slurmd; exports SLURM_CONF
#   trap slurm_cluster_stop EXIT         # stops the daemons it started, by pid
#   sbatch ...; slurm_wait_jobs JOBID... # polls squeue until the jobs have left the queue
#
# Configuration: AuthType=auth/none, CredType=cred/none (no munge), non-default
# ports (free ones from 17000 on), NodeName=localhost CPUs=${SLURM_CLUSTER_CPUS:-2},
# RealMemory = 90% of MemTotal, ProctrackType=proctrack/linuxproc, TaskPlugin=task/none, SelectType=select/cons_tres
# (CR_CPU: one CPU per task by default), every state/spool/log file under DIR.
# The daemons run as the calling user (root in CI); they never touch /etc/slurm.

slurm_cluster_install() {
  if command -v slurmctld >/dev/null 2>&1 && command -v slurmd >/dev/null 2>&1 && command -v sbatch >/dev/null 2>&1; then
    return 0
  fi
  command -v apt-get >/dev/null 2>&1 || { echo "slurm-cluster: slurm-wlm is not installed and apt-get is unavailable" >&2; return 1; }
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo -n true 2>/dev/null || { echo "slurm-cluster: slurm-wlm is not installed and there is no root/sudo to install it" >&2; return 1; }
    sudo="sudo -n"
  fi
  echo "slurm-cluster: installing slurm-wlm (apt)" >&2
  $sudo apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends slurm-wlm >/dev/null 2>&1 \
    || { echo "slurm-cluster: apt-get install slurm-wlm failed" >&2; return 1; }
  # Debian enables the system services; this private cluster never uses them.
  command -v slurmctld >/dev/null 2>&1
}

_slurm_port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

_slurm_free_port() {
  local p=$1
  while ! _slurm_port_free "$p" || ! _slurm_port_free $((p + 1)); do p=$((p + 2)); done
  echo "$p"
}

# slurm_cluster_start DIR: writes DIR/slurm.conf, starts slurmctld and slurmd, waits until the node is idle.
slurm_cluster_start() {
  local dir
  dir=$(mkdir -p "$1" && cd "$1" && pwd)
  SLURM_CLUSTER_DIR=$dir
  local cpus=${SLURM_CLUSTER_CPUS:-2}
  local base=$(( 17000 + ($$ % 400) * 2 ))
  local ctld_port slurmd_port
  ctld_port=$(_slurm_free_port "$base")
  slurmd_port=$((ctld_port + 1))
  local user mem
  user=$(id -un)
  # RealMemory in MB (the scripts' --mem requests must fit), leaving 10% to the system.
  mem=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo 2>/dev/null || echo 1024)
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  cat >"$dir/slurm.conf" <<EOF
# Private single-node cluster written by scripts/slurm-cluster.sh
ClusterName=facebatch$$
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/none
CredType=cred/none
AuthInfo=cred_expire=5
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
ReturnToService=2
JobRequeue=1
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=300
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=localhost CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
  # An empty cgroup.conf keeps slurmd from probing cgroups it does not use.
  : >"$dir/cgroup.conf"
  export SLURM_CONF="$dir/slurm.conf"
  slurmctld -D -i -f "$SLURM_CONF" >"$dir/log/slurmctld.out" 2>&1 &
  SLURM_CLUSTER_CTLD_PID=$!
  slurmd -D -N localhost -f "$SLURM_CONF" >"$dir/log/slurmd.out" 2>&1 &
  SLURM_CLUSTER_SLURMD_PID=$!
  echo "$SLURM_CLUSTER_CTLD_PID $SLURM_CLUSTER_SLURMD_PID" >"$dir/daemons.pids"
  local i state
  for i in $(seq 1 300); do
    state=$(sinfo -h -N -o '%T' 2>/dev/null | head -n1)
    case "$state" in idle*|mixed*|allocated*) echo "slurm-cluster: up in $dir (slurmctld pid $SLURM_CLUSTER_CTLD_PID port $ctld_port, slurmd pid $SLURM_CLUSTER_SLURMD_PID)" >&2; return 0 ;; esac
    if ! kill -0 "$SLURM_CLUSTER_CTLD_PID" 2>/dev/null || ! kill -0 "$SLURM_CLUSTER_SLURMD_PID" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "slurm-cluster: the cluster did not come up (node state '${state:-none}'); logs in $dir/log:" >&2
  tail -n 20 "$dir/log/"*.log "$dir/log/"*.out >&2 2>/dev/null || true
  return 1
}

# Stops the daemons this shell started (by pid), waiting for them to exit.
slurm_cluster_stop() {
  local pid
  for pid in ${SLURM_CLUSTER_SLURMD_PID:-} ${SLURM_CLUSTER_CTLD_PID:-}; do
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  SLURM_CLUSTER_SLURMD_PID=""
  SLURM_CLUSTER_CTLD_PID=""
}

# slurm_wait_jobs TIMEOUT_S JOBID...: waits until none of the jobs (array tasks included) is in the queue.
slurm_wait_jobs() {
  local timeout=$1
  shift
  local ids
  ids=$(IFS=,; echo "$*")
  local t0=$SECONDS
  while [ $((SECONDS - t0)) -lt "$timeout" ]; do
    if [ -z "$(squeue -h -j "$ids" -o '%i' 2>/dev/null)" ]; then return 0; fi
    sleep 1
  done
  echo "slurm-cluster: jobs $ids still queued after ${timeout}s:" >&2
  squeue -j "$ids" >&2 || true
  return 1
}
