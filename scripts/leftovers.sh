# Counters shared by scripts/soak.sh and scripts/faults.sh (sourced, not run): what a set
# of judgebox processes may have left behind on this host.

# The caller's judgebox processes carry LEFTOVER_TAG in their environment (a sandbox's
# init is a clone of its supervisor: it has it too), so a soak and a fault run on one
# host do not count each other's.
export LEFTOVER_TAG=${LEFTOVER_TAG:-leftover-$$}

# Processes running BIN with our tag, or running as a uid in FIRST..LAST (the runs'
# leased uids: a program has a clean environment).
count_processes() {
    local bin=$1 first=$2 last=$3 n=0 p exe uid
    for p in /proc/[0-9]*; do
        exe=$(readlink "$p/exe" 2>/dev/null || true)
        uid=$(awk '/^Uid:/ {print $2}' "$p/status" 2>/dev/null || echo 0)
        if { [ "$exe" = "$bin" ] && { tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qx "LEFTOVER_TAG=$LEFTOVER_TAG"; } ||
            { [ "$uid" -ge "$first" ] && [ "$uid" -le "$last" ]; }; then
            n=$((n + 1))
        fi
    done
    echo "$n"
}

# Uids in FIRST..LAST whose lease file is still locked by someone.
count_leases() {
    local first=$1 last=$2 n=0 u
    for ((u = first; u <= last; u++)); do
        [ -e "/run/judgebox/uids/$u" ] && ! flock -n -x "/run/judgebox/uids/$u" true 2>/dev/null &&
            n=$((n + 1))
    done
    echo "$n"
}

# Run cgroups (`run-PID-START-N`, any hierarchy) of the judgebox pids in the PIDS
# alternation (`1|2|3`), and judge work dirs (judgebox-judge-PID-N in the scratch base:
# $TMPDIR, /dev/shm or /tmp, see src/scratch.rs) of the same.
count_cgroups() {
    find /sys/fs/cgroup -mindepth 1 -type d -regextype egrep -regex ".*/run-($1)-[0-9]+-[0-9]+" 2>/dev/null | wc -l
}
count_work_dirs() {
    find ${TMPDIR:-} /dev/shm /tmp -maxdepth 1 -regextype egrep -regex ".*/judgebox-judge-($1)-[0-9]+" 2>/dev/null | sort -u | wc -l
}
