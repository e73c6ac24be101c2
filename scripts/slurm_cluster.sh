#!/usr/bin/env bash
# A one-node Slurm cluster on this machine (slurmctld + slurmd + munged), for the Slurm executor's tests.
#
#   scripts/slurm_cluster.sh start DIR   # installs slurm-wlm and munge if missing (root, apt), writes DIR/slurm.conf,
#                                        # starts the daemons; prints SLURM_CONF=DIR/slurm.conf on success
#   scripts/slurm_cluster.sh stop DIR    # stops what `start` started (by the pids it recorded in DIR)
#
# Both are idempotent. Slurm's commands (sbatch, squeue, scancel) need SLURM_CONF=DIR/slurm.conf in their
# environment. On failure the last line on stderr is the reason (exit 3: this machine cannot run it).
set -u

die() { echo "slurm_cluster: $*" >&2; exit 3; }

[ $# -eq 2 ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
action=$1
mkdir -p "$2" || die "cannot create $2"
dir=$(cd "$2" && pwd)
conf=$dir/slurm.conf

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && [ -x /usr/sbin/munged ] && return 0
    [ "$(id -u)" -eq 0 ] || die "slurm-wlm and munge are not installed and this is not root (cannot apt-get install)"
    command -v apt-get >/dev/null || die "slurm-wlm and munge are not installed and there is no apt-get here"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q slurm-wlm munge >"$dir/apt.log" 2>&1; then
        apt-get update -q >>"$dir/apt.log" 2>&1 \
            || die "apt-get update failed (no network to the apt mirror?); see $dir/apt.log"
        apt-get install -y -q slurm-wlm munge >>"$dir/apt.log" 2>&1 \
            || die "apt-get install slurm-wlm munge failed; see $dir/apt.log"
    fi
}

start_munge() {
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0
    [ -s /etc/munge/munge.key ] || die "no munge key at /etc/munge/munge.key"
    mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge: /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- /usr/sbin/munged >"$dir/munged.out" 2>&1 || die "munged did not start: $(tail -1 "$dir/munged.out")"
    cp /run/munge/munged.pid "$dir/munged.pid" 2>/dev/null  # ours to stop
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0; sleep 0.1; done
    die "munged started but munge/unmunge fail"
}

write_conf() {
    host=$(hostname -s)
    total_mb=$(free -m | awk '/^Mem:/ {print $2}')
    cat >"$conf" <<EOF
# written by scripts/slurm_cluster.sh: one node, no accounting, no cgroups
ClusterName=evalkit
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
NodeName=$host CPUs=$(nproc) RealMemory=$((total_mb * 9 / 10)) State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    mkdir -p "$dir/state" "$dir/spool"
}

start() {
    export SLURM_CONF=$conf
    if alive "$dir/slurmctld.pid" && alive "$dir/slurmd.pid" && sinfo -h >/dev/null 2>&1; then
        echo "SLURM_CONF=$conf"; return 0
    fi
    [ "$(id -u)" -eq 0 ] || die "not root: slurmd must run as root"
    install_packages
    start_munge
    write_conf
    # Each daemon is itself the background job, with only its own files open: a backgrounded `a || b` list would
    # be a subshell holding the caller's stdout and stderr open for as long as the daemon runs.
    if ! alive "$dir/slurmctld.pid"; then setsid slurmctld -D -f "$conf" >"$dir/slurmctld.out" 2>&1 </dev/null & fi
    if ! alive "$dir/slurmd.pid"; then setsid slurmd -D -f "$conf" >"$dir/slurmd.out" 2>&1 </dev/null & fi
    for _ in $(seq 150); do
        state=$(sinfo -h -o %T 2>/dev/null | head -1)
        case $state in idle|mixed|allocated) echo "SLURM_CONF=$conf"; return 0 ;; esac
        sleep 0.2
    done
    die "slurmctld/slurmd did not come up within 30 s (node state '${state:-none}'); see $dir/slurmctld.log, $dir/slurmd.log"
}

stop() {
    export SLURM_CONF=$conf
    [ -f "$conf" ] && alive "$dir/slurmctld.pid" && scancel --quiet --full -u "$(id -un)" 2>/dev/null
    for name in slurmd slurmctld munged; do
        if alive "$dir/$name.pid"; then
            pid=$(cat "$dir/$name.pid")
            kill "$pid" 2>/dev/null
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
        fi
        rm -f "$dir/$name.pid"
    done
    return 0
}

case $action in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
