#!/usr/bin/env bash
# Fault injection (issue 15). SIGKILLs judgebox at ITERATIONS (default 100) random moments
# across `run`, `judge`, `image import` (a local OCI archive made by faults/mkimage.py) and
# `image pull` (the same image pushed with skopeo to Debian's docker-registry on
# 127.0.0.1; skipped with a note when either tool is missing), and after each starts judgebox again (a judge, `image ls`, a run of every
# image) and counts what is left behind: processes, host mounts, cgroups, leased uids,
# staging dirs (store staging, partial blobs, judge work dirs) and half images (a name
# whose rootfs is missing or does not run). Then the disk-full cases (the store on a small
# tmpfs, /box and /tmp full, the judge's captured output on a full TMPDIR) and a cgroup
# parent made read-only in the middle of a judging: each must end with a clear error and
# leave nothing half-written. Everything uses its own store in a temp dir, never
# /var/lib/judgebox. Prints the counts; exit status 1 if any is non-zero.
# Run as root from the repo, release binary built:   scripts/faults.sh [ITERATIONS]
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/leftovers.sh
[ "$(id -u)" = 0 ] || { echo "faults.sh: run as root" >&2; exit 2; }
iterations=${1:-100}
BIN=$(readlink -f "${JUDGEBOX:-$PWD/target/$(rustc -vV | sed -n 's/^host: //p')/release/judgebox}")
uid_range=${FAULTS_UID_RANGE:-2000011000-2000011063}
uid_first=${uid_range%-*}
uid_last=${uid_range#*-}
T=$(mktemp -d /tmp/judgebox-faults.XXXXXX)
ROOT=$T/store
cg_rel=judgebox-faults-$$
registry_pid=
cleanup() {
    [ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null
    for m in $(grep -o "$T/[^ ]*" /proc/self/mountinfo | sort -r) /sys/fs/cgroup/pids/$cg_rel; do
        while umount "$m" 2>/dev/null; do :; done
    done
    find /sys/fs/cgroup -depth -type d -path "*/$cg_rel*" -exec rmdir {} + 2>/dev/null || true
    rm -rf "$T"
}
trap cleanup EXIT
[ -n "${FAULTS_KEEP:-}" ] && trap - EXIT
export JUDGEBOX_UID_RANGE=$uid_range
busybox=$(command -v busybox)
file -L "$busybox" | grep -q 'statically linked' || { echo "faults.sh: needs a static busybox" >&2; exit 2; }

# Images: A stays in the store; B is imported (and pruned again) by the kill loop.
scripts/faults/mkimage.py "$busybox" "$T/a.tar" faults/busybox:a 3000
scripts/faults/mkimage.py "$busybox" "$T/b.tar" faults/busybox:b 4000
"$BIN" image import --root "$ROOT" --min-free 0 "$T/a.tar" >/dev/null
# B also sits in a local registry for the pull kills.
pull_ref=
if command -v docker-registry >/dev/null && command -v skopeo >/dev/null; then
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
        "$T/registry" "$port" >"$T/registry.yml"
    docker-registry serve "$T/registry.yml" >"$T/registry.log" 2>&1 &
    registry_pid=$!
    for _ in $(seq 100); do
        python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/v2/', timeout=1)" 2>/dev/null && break
        sleep 0.1
    done
    skopeo copy -q --dest-tls-verify=false "oci-archive:$T/b.tar" "docker://127.0.0.1:$port/faults/busybox:b"
    pull_ref=127.0.0.1:$port/faults/busybox:b
else
    echo "faults.sh: docker-registry or skopeo missing: no pull kills (apt-get install docker-registry skopeo)" >&2
fi
mkdir "$T/manifests" "$T/tests"
cat >"$T/manifests/sh.toml" <<'TOML'
name = "sh"
display = "busybox sh"
judge0_ids = [9001]
image = "faults/busybox:a"
source_file = "main.sh"

[run]
command = ["sh", "main.sh"]
time = 2.0
wall_time = 4.0
memory = "64M"
pids = 16
output = "8M"
TOML
printf 'read x; sleep 0.05; echo $((x * 2))\n' >"$T/main.sh"
for i in 1 2 3 4 5 6; do echo "$i" >"$T/tests/$i.in"; echo $((i * 2)) >"$T/tests/$i.out"; done
judge() { "$BIN" judge --root "$ROOT" --manifests "$T/manifests" --lang sh --parallel 2 "$@"; }

# judgebox's mounts on the host, but the network-namespace pool's pins under
# /run/judgebox/netns: those are kept for reuse by design (bounded, `judgebox cleanup`
# removes them), and a judge that ran two workers at once may leave a second one.
judgebox_mounts() { grep judgebox /proc/self/mountinfo | grep -vc '/run/judgebox/netns/' || true; }
mounts_before=$(judgebox_mounts)
: >"$T/pids"

# What is left behind now, as "processes mounts cgroups leases staging half".
leftovers() {
    local procs
    procs=$(count_processes "$BIN" "$uid_first" "$uid_last")
    local mounts=$(( $(judgebox_mounts) - mounts_before ))
    [ "$mounts" -lt 0 ] && mounts=0
    mounts=$((mounts + $(grep -c "$T" /proc/self/mountinfo || true)))
    local pids cgroups staging leases half=0
    pids=$(paste -sd'|' "$T/pids")
    cgroups=$(count_cgroups "$pids")
    staging=$(( $(find "$ROOT/staging" -mindepth 1 -maxdepth 1 | wc -l)
        + $(find "$ROOT/blobs/.incoming" -mindepth 1 | wc -l)
        + $(count_work_dirs "$pids") ))
    leases=$(count_leases "$uid_first" "$uid_last")
    # Every name runs; its rootfs is there.
    local names
    names=$("$BIN" image ls --root "$ROOT" --json | python3 -c '
import json, sys
for i in json.load(sys.stdin): print(i["name"])')
    for n in $names; do
        "$BIN" run --root "$ROOT" --image "$n" --json -- /bin/echo ok 2>/dev/null | grep -q '"stdout": *"ok' ||
            { half=$((half + 1)); echo "faults: image $n does not run" >&2; }
    done
    echo "$procs $mounts $cgroups $leases $staging $half"
}

declare -A total=([processes]=0 [mounts]=0 [cgroups]=0 [leases]=0 [staging]=0 [half]=0)
add_counts() {
    local c=($1) k i=0
    for k in processes mounts cgroups leases staging half; do
        total[$k]=$((total[$k] + c[i])); i=$((i + 1))
    done
}

echo "== $iterations SIGKILLs at random moments"
declare -A kills=([run]=0 [judge]=0 [import]=0 [pull]=0)
ops=3
[ -n "$pull_ref" ] && ops=4
for ((it = 1; it <= iterations; it++)); do
    case $((RANDOM % ops)) in
    0) op=run; max_ms=300
       "$BIN" run --root "$ROOT" --image faults/busybox:a --json -- /bin/sh -c 'sleep 0.1; echo done' >/dev/null 2>&1 & ;;
    1) op=judge; max_ms=900
       judge "$T/main.sh" --tests "$T/tests" --json >/dev/null 2>&1 & ;;
    2) op=import; max_ms=700
       "$BIN" image import --root "$ROOT" --min-free 0 "$T/b.tar" >/dev/null 2>&1 & ;;
    *) op=pull; max_ms=700
       "$BIN" image pull --root "$ROOT" --min-free 0 "$pull_ref" >/dev/null 2>&1 & ;;
    esac
    pid=$!
    echo "$pid" >>"$T/pids"
    sleep "$(awk -v ms=$((RANDOM % max_ms)) 'BEGIN {printf "%.3f", ms / 1000}')"
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    kills[$op]=$((kills[$op] + 1))
    # The next start: a judge (it removes dead judges' work dirs), image ls (the store
    # removes dead imports' staging), a run of every image (run cgroups of dead runs are
    # reaped), then B is dropped again so the next import unpacks for real.
    judge "$T/main.sh" --tests "$T/tests" --json >/dev/null 2>&1 & echo $! >>"$T/pids"; wait $! || true
    counts=$(leftovers)
    "$BIN" image rm --root "$ROOT" faults/busybox:b >/dev/null 2>&1 || true
    [ -n "$pull_ref" ] && { "$BIN" image rm --root "$ROOT" "$pull_ref" >/dev/null 2>&1 || true; }
    "$BIN" image prune --root "$ROOT" >/dev/null 2>&1 || true
    [ "$counts" = "0 0 0 0 0 0" ] || echo "faults: after killing $op (pid $pid) at iteration $it: left $counts (processes mounts cgroups leases staging half)" >&2
    add_counts "$counts"
done
echo "kills: run ${kills[run]}, judge ${kills[judge]}, import ${kills[import]}, pull ${kills[pull]}"

failures=0
fail() { echo "faults: $*" >&2; failures=$((failures + 1)); }

echo "== disk full in the store"
mkdir "$T/small"
mount -t tmpfs -o size=24m tmpfs "$T/small"
"$BIN" image import --root "$T/small/store" --min-free 0 "$T/a.tar" >/dev/null 2>&1 ||
    fail "image A does not fit a 24 MiB store"
index_before=$(sha256sum <"$T/small/store/images.json")
if "$BIN" image import --root "$T/small/store" --min-free 0 "$T/b.tar" >/dev/null 2>"$T/err"; then
    fail "an import into a full store succeeded"
fi
grep -qi 'no space\|disk full\|full' "$T/err" || fail "full store: unclear error: $(head -c 300 "$T/err")"
[ "$(sha256sum <"$T/small/store/images.json")" = "$index_before" ] || fail "full store: the index changed"
[ -z "$(ls -A "$T/small/store/staging")" ] || fail "full store: staging left: $(ls "$T/small/store/staging")"
"$BIN" run --root "$T/small/store" --image faults/busybox:a --json -- /bin/echo ok | grep -q '"stdout": *"ok' ||
    fail "full store: image A no longer runs"
echo "store: $(head -c 200 "$T/err" | tr '\n' ' ')"
umount "$T/small"

echo "== /box and /tmp full"
for dir in box tmp; do
    out=$("$BIN" run --root "$ROOT" --image faults/busybox:a --json --$dir-size 1M -- \
        /bin/sh -c "dd if=/dev/zero of=/$dir/fill bs=64k count=64" 2>&1 || true)
    echo "$out" | grep -q '"status": *"runtime_error"' || fail "/$dir full: not a runtime error: $out"
    echo "$out" | grep -q 'No space left' || fail "/$dir full: no clear error: $out"
done

echo "== the judge's captured output on a full TMPDIR"
mkdir "$T/tmpdir"
mount -t tmpfs -o size=256k tmpfs "$T/tmpdir"
printf 'yes | head -c 4000000\n' >"$T/flood.sh"
out=$(TMPDIR=$T/tmpdir judge "$T/flood.sh" --tests "$T/tests" --json 2>&1 || true)
echo "$out" | grep -q '"verdict": *"internal_error"' || fail "full TMPDIR: not an internal error: $(echo "$out" | head -c 400)"
echo "$out" | grep -q 'No space left' || fail "full TMPDIR: no clear error: $(echo "$out" | head -c 400)"
echo "$out" | grep -q '"verdict": *"wrong_answer"' && fail "full TMPDIR: a truncated output was judged"
[ -z "$(ls -A "$T/tmpdir")" ] || fail "full TMPDIR: left $(ls "$T/tmpdir")"
umount "$T/tmpdir"

echo "== a cgroup parent made read-only in the middle of a judging"
parent=/sys/fs/cgroup/pids/$cg_rel
mkdir -p "$parent"
# ~3 s of tests (each sleeps 50 ms, two at a time): the parent turns read-only after 1 s,
# well before the last test's cgroup is made.
for i in $(seq 1 120); do echo "$i" >"$T/tests/$i.in"; echo $((i * 2)) >"$T/tests/$i.out"; done
judge "$T/main.sh" --tests "$T/tests" --cgroup-root "$parent" --no-reuse --json >"$T/cg.json" 2>"$T/cg.err" &
jpid=$!
echo "$jpid" >>"$T/pids"
sleep 1
mount --bind -o ro "$parent" "$parent" || fail "cannot make $parent read-only"
wait "$jpid" && fail "judging with a read-only cgroup parent succeeded"
umount "$parent"
# The tests after the change end with an error naming the cgroup (or the judge stops with one).
summary=$(python3 -c '
import collections, json, sys
try:
    r = json.load(open(sys.argv[1]))
except ValueError:
    sys.exit(0)
tests = r.get("tests", [])
print(dict(collections.Counter(t["verdict"] for t in tests)))
for t in tests:
    if t["verdict"] != "accepted":
        print(t.get("message", "")); break
' "$T/cg.json")
echo "cgroup: verdicts ${summary:-none (the judging stopped)}; $(grep -m1 'error:' "$T/cg.err" || head -c 300 "$T/cg.err")"
echo "$summary $(cat "$T/cg.err")" | grep -qi 'cgroup' || fail "read-only cgroup parent: no clear error"
# The next start reaps what the failed judging could not remove.
judge "$T/main.sh" --tests "$T/tests" --cgroup-root "$parent" --json >/dev/null 2>&1 & echo $! >>"$T/pids"; wait $! || true
left=$(find /sys/fs/cgroup -mindepth 1 -type d -path "*/$cg_rel/*" | wc -l)
[ "$left" = 0 ] || fail "read-only cgroup parent: $left cgroups left under $cg_rel"
add_counts "$(leftovers)"

echo "faults: $iterations kills, then the disk-full and cgroup cases"
for k in processes mounts cgroups leases staging half; do printf '%-12s %d\n' "$k" "${total[$k]}"; done
printf '%-12s %d\n' failures "$failures"
sum=$failures
for k in "${!total[@]}"; do sum=$((sum + total[$k])); done
[ "$sum" -eq 0 ]
