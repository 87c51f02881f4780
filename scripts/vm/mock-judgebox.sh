#!/bin/sh
# A stand-in for judgebox, in busybox sh, that implements just enough of its CLI on
# cgroup v2 to exercise the VM scenarios and the benchmark before the real cgroup code
# exists. It is a test double for the harness, not a sandbox (chroot only, no
# namespaces, no seccomp):
#   scripts/vm-test.sh --binary scripts/vm/mock-judgebox.sh
#
# judgebox run --rootfs DIR [--json] [--memory SIZE] [--pids N] [--time SECS]
#              [--wall-time SECS] [--cpus F] [--cgroup-root PATH] [--no-cgroup] -- CMD...
# judgebox doctor [--json]
# judgebox --version
# Setting VMT_MOCK_BREAK=leak makes it leave its run cgroups behind (to see the
# scenarios catch it).
CG=/sys/fs/cgroup
CTRLS="memory pids cpu"

die() {
    echo "judgebox-mock: $*" >&2
    exit 2
}

# bytes SIZE: 64M -> 67108864 (K, M, G suffixes, binary units)
bytes() {
    case $1 in
    *[Kk]) echo $((${1%?} * 1024)) ;;
    *[Mm]) echo $((${1%?} * 1048576)) ;;
    *[Gg]) echo $((${1%?} * 1073741824)) ;;
    *) echo $(($1)) ;;
    esac
}

# JSON string body of a file's contents (lines joined with \n).
json_file() {
    awk 'BEGIN { ORS = "" } {
        gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); gsub(/\t/, "\\t"); gsub(/\r/, "\\r")
        print $0 "\\n" }' "$1"
}

# Controllers available in $1 (cgroup.controllers) all present?
has_ctrls() {
    for c in $CTRLS; do grep -qw $c "$1/cgroup.controllers" || return 1; done
}

enable_ctrls() { # DIR
    for c in $CTRLS; do
        grep -qw $c "$1/cgroup.subtree_control" || echo "+$c" >"$1/cgroup.subtree_control" || return 1
    done
}

# Prepare the parent of the run cgroups and print its path. With --cgroup-root, a
# parent that holds processes gets them moved into PARENT/leaf first.
prepare_parent() {
    if [ -z "$cgroot" ]; then
        enable_ctrls $CG || return 1
        mkdir -p $CG/judgebox || return 1
        enable_ctrls $CG/judgebox || return 1
        echo $CG/judgebox
        return 0
    fi
    [ -d "$cgroot" ] || return 1
    if ! grep -qw memory "$cgroot/cgroup.subtree_control" && grep -q . "$cgroot/cgroup.procs"; then
        mkdir -p "$cgroot/leaf" || return 1
        while read -r p; do
            echo "$p" >"$cgroot/leaf/cgroup.procs" 2>/dev/null
        done <"$cgroot/cgroup.procs"
    fi
    enable_ctrls "$cgroot" || return 1
    echo "$cgroot"
}

cmd_doctor() {
    ok=true
    has_ctrls $CG || ok=false
    echo "{\"cgroup\":\"v2\",\"controllers\":\"$(cat $CG/cgroup.controllers)\",\"ok\":$ok}"
    [ $ok = true ]
}

cmd_run() {
    json=0 rootfs="" mem="" pids="" cpu="" wall="" cpus="" cgroot="" nocg=0
    while [ $# -gt 0 ]; do
        case $1 in
        --json) json=1 ;;
        --rootfs) rootfs=$2; shift ;;
        --memory) mem=$(bytes "$2"); shift ;;
        --pids) pids=$2; shift ;;
        --time) cpu=$2; shift ;;
        --wall-time) wall=$2; shift ;;
        --cpus) cpus=$2; shift ;;
        --cgroup-root) cgroot=$2; shift ;;
        --no-cgroup) nocg=1 ;;
        --) shift; break ;;
        *) die "unknown option $1" ;;
        esac
        shift
    done
    [ -n "$rootfs" ] && [ $# -gt 0 ] || die "usage: judgebox run --rootfs DIR [opts] -- CMD..."
    tmp=$(mktemp -d /tmp/jbmock.XXXXXX)
    cg="" enf=none
    if [ $nocg = 0 ]; then
        parent=$(prepare_parent) || die "cannot prepare cgroup parent ${cgroot:-$CG}"
        cg=$parent/run-$$
        mkdir "$cg" || die "cannot create $cg"
        [ -n "$mem" ] && echo "$mem" >"$cg/memory.max" && { echo 0 >"$cg/memory.swap.max"; } 2>/dev/null
        [ -n "$pids" ] && echo "$pids" >"$cg/pids.max"
        [ -n "$cpus" ] && echo "$(awk -v c="$cpus" 'BEGIN { printf "%d", c * 100000 }') 100000" >"$cg/cpu.max"
        enf=cgroup2
    fi
    read -r t0 _ </proc/uptime
    if [ -n "$cg" ]; then
        sh -c 'echo $$ >"$1/cgroup.procs" && shift && exec chroot "$@"' sh "$cg" "$rootfs" "$@"
    else
        exec chroot "$rootfs" "$@"
    fi >"$tmp/out" 2>"$tmp/err" </dev/null &
    child=$!
    status="" usec=0
    while kill -0 $child 2>/dev/null; do
        read -r now _ </proc/uptime
        if [ -n "$cg" ]; then
            read -r _ usec <"$cg/cpu.stat"
            if [ -n "$cpu" ] && awk -v u="$usec" -v l="$cpu" 'BEGIN { exit !(u >= l * 1e6) }'; then
                status=time_limit
            fi
        fi
        if [ -z "$status" ] && [ -n "$wall" ] && awk -v a="$now" -v b="$t0" -v l="$wall" 'BEGIN { exit !(a - b >= l) }'; then
            status=wall_time_limit
        fi
        if [ -n "$status" ]; then
            if [ -n "$cg" ]; then echo 1 >"$cg/cgroup.kill"; else kill -9 $child; fi
            break
        fi
        sleep 0.02
    done
    wait $child
    rc=$?
    read -r t1 _ </proc/uptime
    peak=null oom=0
    if [ -n "$cg" ]; then
        echo 1 >"$cg/cgroup.kill"
        while ! grep -qx 'populated 0' "$cg/cgroup.events"; do sleep 0.01; done
        read -r _ usec <"$cg/cpu.stat"
        peak=$(cat "$cg/memory.peak")
        oom=$(awk '$1 == "oom_kill" { print $2 }' "$cg/memory.events")
        [ "${VMT_MOCK_BREAK:-}" = leak ] || rmdir "$cg"
    fi
    sig=null signame=null code=null
    if [ $rc -gt 128 ]; then
        sig=$((rc - 128))
        signame="\"SIG$(kill -l $sig)\""
    else
        code=$rc
    fi
    if [ -z "$status" ]; then
        if [ "${oom:-0}" -gt 0 ]; then status=memory_limit
        elif [ $rc = 0 ]; then status=ok
        elif [ $sig != null ]; then status=signaled
        else status=runtime_error
        fi
    fi
    if [ $json = 1 ]; then
        printf '{"status":"%s","exit_code":%s,"signal":%s,"signal_name":%s,' "$status" "$code" "$sig" "$signame"
        printf '"cpu_time":%s,"wall_time":%s,"memory_peak":%s,' \
            "$(awk -v u="$usec" 'BEGIN { printf "%.3f", u / 1e6 }')" \
            "$(awk -v a="$t1" -v b="$t0" 'BEGIN { printf "%.2f", a - b }')" "$peak"
        printf '"stdout":"%s","stderr":"%s","stdout_truncated":false,"stderr_truncated":false,' \
            "$(json_file "$tmp/out")" "$(json_file "$tmp/err")"
        printf '"message":"mock","enforcement":{"memory":"%s","pids":"%s","cpu_time":"%s","cpus":"%s"}}\n' \
            $enf $enf $enf $enf
    else
        cat "$tmp/out"
        cat "$tmp/err" >&2
    fi
    rm -rf "$tmp"
    [ $status = ok ]
}

case ${1:-} in
--version) echo "judgebox-mock 0 (scripts/vm/mock-judgebox.sh)" ;;
doctor) cmd_doctor ;;
run) shift; cmd_run "$@" ;;
*) die "usage: judgebox run|doctor|--version" ;;
esac
