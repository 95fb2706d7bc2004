#!/usr/bin/env bash
# A throw-away single-node SLURM cluster on 127.0.0.1 for the SLURM test, in one directory:
#
#   source tests/slurm/slurm_cluster.sh
#   slurm_cluster_start DIR [CPUS]  # installs slurm-wlm + munge if missing (root, Debian), starts
#                               # munged, slurmctld and slurmd (a node of CPUS, default the
#                               # machine's cores), exports SLURM_CONF
#   slurm_cluster_stop DIR      # stops exactly the daemons it started, by PID
#
# No accounting (sacct exists but has no database: the profile's squeue status command must be
# used), proctrack/linuxproc, task/none, MinJobAge well above the status-check interval, and the
# node named localhost so that it resolves to 127.0.0.1. munged runs on its own socket in DIR,
# so a munged of the host (if any) is left alone. /etc/slurm/slurm.conf becomes a link to DIR's
# config while the cluster runs (refused if a real one is there; a stale link left by a test run
# killed before its cleanup, whose cluster is gone, is removed).

slurm_cluster_install() {
    local missing=()
    for tool in slurmctld slurmd sbatch munged; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "slurm test: needs slurm-wlm and munge (missing: ${missing[*]}); run as root on Debian" >&2
        return 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null
}

slurm_cluster_drop_stale_link() {
    # A test run killed before its EXIT trap (a session stopped mid-test) leaves the link behind,
    # pointing at a test cluster whose slurmctld is gone: remove it, and leave anything else alone.
    local target pid
    [ -L /etc/slurm/slurm.conf ] || return 0
    target=$(readlink /etc/slurm/slurm.conf)
    case "$target" in */genofm-slurm.*/cluster/slurm.conf) ;; *) return 0 ;; esac
    pid=$(cat "$(dirname "$target")/slurmctld.started" 2>/dev/null || true)
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = slurmctld ]; then
        return 0  # a test cluster that is still running
    fi
    echo "slurm test: removing a stale /etc/slurm/slurm.conf link to $target (its test cluster is gone)" >&2
    rm -f /etc/slurm/slurm.conf
}

slurm_cluster_start() {
    local dir=$1
    slurm_cluster_install
    mkdir -p "$dir"/{munge,state,spool}
    chmod 700 "$dir/munge"
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$dir/munge/munge.key"
    # --force: munged refuses root otherwise; its own socket, key and pid file in DIR
    munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" \
        --seed-file="$dir/munge/munged.seed"
    local cpus=${2:-$(nproc)} memory overrides=
    # more CPUs than the machine has: slurmd must take the config's count, not the hardware's
    [ "$cpus" -gt "$(nproc)" ] && overrides="SlurmdParameters=config_overrides"
    memory=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
    cat > "$dir/slurm.conf" <<EOF
ClusterName=genofm-test
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=${GENOFM_SLURMCTLD_PORT:-6817}
SlurmdPort=${GENOFM_SLURMD_PORT:-6818}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
MinJobAge=900
InactiveLimit=0
KillWait=10
$overrides
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF="$dir/slurm.conf"
    # srun inside a job must find it too, and the jobstep executor drops SLURM_* variables
    # (SLURM_CONF included): link it where SLURM looks by default, unless a real one is there
    slurm_cluster_drop_stale_link
    if [ -e /etc/slurm/slurm.conf ] && [ "$(readlink /etc/slurm/slurm.conf)" != "$dir/slurm.conf" ]; then
        echo "slurm test: /etc/slurm/slurm.conf exists (a real cluster?); not touching it" >&2
        return 1
    fi
    mkdir -p /etc/slurm
    ln -sfn "$dir/slurm.conf" /etc/slurm/slurm.conf
    slurmctld -D -f "$SLURM_CONF" > "$dir/slurmctld.out" 2>&1 &
    echo $! > "$dir/slurmctld.started"
    slurmd -D -N localhost -f "$SLURM_CONF" > "$dir/slurmd.out" 2>&1 &
    echo $! > "$dir/slurmd.started"
    for _ in $(seq 60); do
        if sinfo -h -o %t 2>/dev/null | grep -q idle; then
            echo "slurm test: cluster up ($(sinfo -h -o '%P %D %t %c CPUs %m MB'))"
            return 0
        fi
        sleep 1
    done
    echo "slurm test: the node did not come up; logs:" >&2
    tail -n 20 "$dir"/slurmctld.log "$dir"/slurmd.log "$dir"/*.out >&2 || true
    return 1
}

slurm_cluster_stop() {
    local dir=$1 pid
    for name in slurmd slurmctld; do
        if [ -s "$dir/$name.started" ]; then
            pid=$(cat "$dir/$name.started")
            kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
            rm -f "$dir/$name.started"
        fi
    done
    if [ -s "$dir/munge/munged.pid" ]; then
        kill "$(cat "$dir/munge/munged.pid")" 2>/dev/null || true
    fi
    if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$dir/slurm.conf" ]; then
        rm -f /etc/slurm/slurm.conf
    fi
}
