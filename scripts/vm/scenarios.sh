#!/bin/sh
# judgebox cgroup-v2 scenarios, run by /init inside the test VM (busybox sh, as root).
# Two setups:
#   a) judgebox at the cgroup root of a fresh VM (no controllers enabled yet);
#   b) judgebox under --cgroup-root /sys/fs/cgroup/delegated, a non-root cgroup that
#      already holds processes (a 'sleep' and this shell): judgebox must move them into
#      a leaf itself before it can enable controllers there (no-internal-processes rule).
# Prints "PASS name" / "FAIL name: reason" and finally "N passed, N failed".
. /vmtest/lib.sh

CG=/sys/fs/cgroup
ROOTFS=/rootfs
MIB=1048576
# Upper bound for any single judgebox invocation, so a hang fails one scenario only.
JB_TIMEOUT=${VMT_JB_TIMEOUT:-60}

echo "=== environment"
info "kernel $(uname -r)"
info "cgroup.controllers: $(cat $CG/cgroup.controllers)"
info "cgroup.subtree_control: $(cat $CG/cgroup.subtree_control)"
info "judgebox: $(judgebox --version 2>&1 | head -n1)"

# jb_run ARGS...: judgebox run --json ARGS with a hard timeout. Sets JB_OUT (stdout),
# JB_RC (exit status; 124/137 = killed by the guard), JB_SECS (wall seconds) and
# appends the "memory" enforcement value to MEM_ENF.
jb_run() {
    _t0=$(now_s)
    JB_OUT=$(timeout -s KILL "$JB_TIMEOUT" judgebox run --json "$@" 2>/tmp/jb.err)
    JB_RC=$?
    JB_SECS=$(fsub "$(now_s)" "$_t0")
    _enf=$(json_str memory "$JB_OUT")
    MEM_ENF="$MEM_ENF ${_enf:-missing}"
    echo "  \$ judgebox run --json $*"
    echo "    -> exit $JB_RC in ${JB_SECS}s: $JB_OUT"
    show /tmp/jb.err 10
}

# expect_status NAME WANT: FAIL unless judgebox answered with "status":"WANT".
expect_status() {
    _st=$(json_str status "$JB_OUT")
    if [ "$JB_RC" -ge 124 ] && [ -z "$JB_OUT" ]; then
        fail "$1" "judgebox did not finish within ${JB_TIMEOUT}s (exit $JB_RC)"
        return 1
    elif [ -z "$_st" ]; then
        fail "$1" "no JSON status on stdout (exit $JB_RC)"
        return 1
    elif [ "$_st" != "$2" ]; then
        fail "$1" "status $_st, want $2 (exit $JB_RC; message: $(json_str message "$JB_OUT"))"
        return 1
    fi
    return 0
}

# run_setup TAG [judgebox run options...]: the limit scenarios, tagged a./b.
run_setup() {
    tag=$1
    shift
    MEM_ENF=""

    jb_run --rootfs $ROOTFS "$@" -- /bin/echo hello
    if expect_status "$tag.basic_run" ok; then
        if [ "$(json_str stdout "$JB_OUT")" = 'hello\n' ]; then
            pass "$tag.basic_run"
        else
            fail "$tag.basic_run" "stdout $(json_str stdout "$JB_OUT"), want hello\\n"
        fi
    fi

    jb_run --rootfs $ROOTFS "$@" --memory 64M -- /probes/alloc 200
    expect_status "$tag.memory_limit" memory_limit && pass "$tag.memory_limit"

    jb_run --rootfs $ROOTFS "$@" --memory 256M -- /probes/alloc 100
    if expect_status "$tag.memory_peak" ok; then
        peak=$(json_num memory_peak "$JB_OUT")
        want=$((100 * MIB))
        if fcmp "$peak" '>=' $((want * 9 / 10)) && fcmp "$peak" '<=' $((want * 11 / 10)); then
            pass "$tag.memory_peak"
        else
            fail "$tag.memory_peak" "memory_peak ${peak:-missing}, want $want +-10%"
        fi
    fi

    jb_run --rootfs $ROOTFS "$@" --pids 32 --wall-time 3 -- /probes/forkbomb
    _pids=$(json_str pids "$JB_OUT")
    _left=$(pidof forkbomb)
    if [ "$JB_RC" -ge 124 ] && [ -z "$JB_OUT" ]; then
        fail "$tag.pids" "judgebox did not finish within ${JB_TIMEOUT}s (exit $JB_RC)"
    elif [ -z "$(json_str status "$JB_OUT")" ]; then
        fail "$tag.pids" "no JSON status on stdout (exit $JB_RC)"
    elif ! fcmp "$JB_SECS" '<=' 8; then
        fail "$tag.pids" "took ${JB_SECS}s with --wall-time 3 (limit 3 s + 5 s slack)"
    elif [ "$_pids" != cgroup2 ]; then
        fail "$tag.pids" "enforcement pids ${_pids:-missing}, want cgroup2"
    elif [ -n "$_left" ]; then
        fail "$tag.pids" "forkbomb processes left running: $_left"
    else
        pass "$tag.pids"
    fi
    [ -n "$_left" ] && kill -9 $_left 2>/dev/null

    jb_run --rootfs $ROOTFS "$@" --time 1 -- /probes/burn 5
    if expect_status "$tag.cpu_time" time_limit; then
        cpu=$(json_num cpu_time "$JB_OUT")
        if fcmp "$cpu" '>=' 0.9 && fcmp "$cpu" '<=' 1.5; then
            pass "$tag.cpu_time"
        else
            fail "$tag.cpu_time" "cpu_time ${cpu:-missing}, want 0.9..1.5"
        fi
    fi

    _bad=""
    for e in $MEM_ENF; do [ "$e" = cgroup2 ] || _bad="$_bad $e"; done
    if [ -z "$_bad" ]; then
        pass "$tag.enforcement_memory"
    else
        fail "$tag.enforcement_memory" "enforcement memory per run:$MEM_ENF (want cgroup2 in all)"
    fi

    _runs=$(find $CG -name 'run-*' 2>/dev/null)
    if [ -z "$_runs" ]; then
        pass "$tag.cleanup"
    else
        fail "$tag.cleanup" "run cgroups left behind: $(echo $_runs)"
    fi
}

# judge_setup TAG [judgebox judge options...]: one submission over 5 tests on one worker,
# so they share a warm sandbox whose program is cloned into each test's cgroup
# (CLONE_INTO_CGROUP): test 3 runs out of memory, test 4 leaves files, IPC objects and a
# background process, test 5 must see none of them; every pid differs (one reused pid
# namespace), no memory figure reads low and no run cgroup is left.
judge_setup() {
    tag=$1
    shift
    D=/tmp/judge-$tag
    mkdir -p $D/manifests $D/tests
    cat >$D/manifests/sh.toml <<'TOML'
name = "sh"
display = "busybox sh"
judge0_ids = [9001]
image = "judgebox-test/none:1"
source_file = "main.sh"
[run]
command = ["/bin/sh", "main.sh"]
time = 2.0
wall_time = 5.0
memory = "64M"
pids = 16
output = "1M"
TOML
    printf 'echo $$\nread what\ncase $what in\n oom) exec /probes/alloc 200;;\n leave|check) exec /probes/leftovers $what;;\n *) echo fine;;\nesac\n' >$D/main.sh
    for t in 1:a 2:b 3:oom 4:leave 5:check; do
        echo "${t#*:}" >$D/tests/${t%%:*}.in
    done
    JB_OUT=$(timeout -s KILL "$JB_TIMEOUT" judgebox judge --lang sh $D/main.sh --manifests $D/manifests \
        --rootfs $ROOTFS --tests $D/tests --parallel 1 --json "$@" 2>/tmp/jb.err)
    echo "  \$ judgebox judge --lang sh ... --parallel 1 --json $* -> exit $?"
    show /tmp/jb.err 10
    _verdicts=$(printf '%s' "$JB_OUT" | grep -o '"verdict":"[a-z_]*"' | sed 's/.*:"//; s/"//' | tr '\n' ' ')
    # The first verdict is the submission's, then the compile (none here), then each test's.
    _want="memory_limit accepted accepted memory_limit accepted accepted "
    _pids=$(printf '%s' "$JB_OUT" | grep -o '"stdout":"[0-9]*' | sed 's/.*"//' | sort -u | wc -l)
    _mem=$(json_str memory "$JB_OUT")
    _runs=$(find $CG -name 'run-*' 2>/dev/null)
    # A memory cgroup takes charges 64 pages (256 KiB) at a time; a test reading less
    # ran in a reused one whose leftover pre-charge hid its use (tests 2-5 get fresh leaves).
    _low=$(printf '%s' "$JB_OUT" | grep -o '"memory_peak":[0-9]*' | sed 's/.*://' | awk '$1 < 262144' | tr '\n' ' ')
    if [ "$_verdicts" != "$_want" ]; then
        fail "$tag.judge_warm" "verdicts: $_verdicts(want $_want); output: $(printf '%s' "$JB_OUT" | head -c 1500)"
    elif [ "$_pids" != 5 ]; then
        fail "$tag.judge_warm" "$_pids distinct program pids over 5 tests, want 5 (one warm sandbox)"
    elif [ "$_mem" != cgroup2 ]; then
        fail "$tag.judge_warm" "enforcement memory ${_mem:-missing}, want cgroup2"
    elif [ -n "$_runs" ]; then
        fail "$tag.judge_warm" "run cgroups left behind: $(echo $_runs)"
    elif [ -n "$_low" ]; then
        fail "$tag.judge_warm" "memory figures below one charge batch: $_low"
    else
        pass "$tag.judge_warm"
    fi
}

echo "=== setup a: judgebox at the cgroup root"
SCEN_T0=$(now_s)
timeout -s KILL "$JB_TIMEOUT" judgebox doctor --json >/tmp/doctor.out 2>/tmp/doctor.err
rc=$?
echo "  \$ judgebox doctor --json -> exit $rc"
show /tmp/doctor.out 40
show /tmp/doctor.err 10
check a.doctor "judgebox doctor --json exited $rc, want 0" [ "$rc" = 0 ]

run_setup a
judge_setup a
info "cgroups after setup a: $(cd $CG && find . -mindepth 1 -type d | tr '\n' ' ')"

echo "=== setup b: --cgroup-root $CG/delegated holding processes"
mkdir -p $CG/delegated
echo "+memory +pids +cpu" >$CG/cgroup.subtree_control \
    || echo "  (could not enable controllers in the root's subtree_control)"
sleep 1000 &
SLEEPER=$!
echo $SLEEPER >$CG/delegated/cgroup.procs || echo "  (could not move sleep $SLEEPER)"
echo $$ >$CG/delegated/cgroup.procs || echo "  (could not move the scenario shell)"
info "delegated: cgroup.procs=$(cat $CG/delegated/cgroup.procs | tr '\n' ' ')" \
    "controllers=$(cat $CG/delegated/cgroup.controllers)"

run_setup b --cgroup-root $CG/delegated
check b.foreign_process_kept "the sleep judgebox did not start (pid $SLEEPER) is gone" \
    kill -0 $SLEEPER
info "cgroups after setup b: $(cd $CG && find . -mindepth 1 -type d | tr '\n' ' ')"
info "sleep $SLEEPER now in $(cat /proc/$SLEEPER/cgroup 2>/dev/null), shell in $(cat /proc/$$/cgroup)"
kill $SLEEPER 2>/dev/null

read -r up _ </proc/uptime
info "scenarios done at uptime ${up}s (took $(fsub "$up" "$SCEN_T0")s)"
summary
