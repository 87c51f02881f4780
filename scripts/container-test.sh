#!/usr/bin/env bash
# judgebox inside containers, on this host, with podman (runc, cgroupfs manager):
#   a) --privileged with a private cgroup namespace: doctor exits 0, limits are enforced
#      by cgroups (memory_limit verdict, fork bomb contained, nothing left behind);
#   b) --cap-add SYS_ADMIN, cgroupfs read-only (the podman default): runs work in the
#      degraded mode (enforcement says rlimit), doctor exits 1 naming --privileged;
#   c) default capabilities: doctor exits 3 ("cannot run") naming CAP_SYS_ADMIN and the
#      --cap-add to use.
# The container image is a busybox tree with the static judgebox binary and a sandbox
# rootfs (/rootfs: busybox + the static probes), imported with `podman import` (no
# registry) and cached by content hash.
#
# usage: scripts/container-test.sh [--binary PATH]
# Exit status: 0 all passed, 1 a scenario failed, 2 harness error.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
BINARY=""
while [ $# -gt 0 ]; do
  case $1 in
    --binary) [ $# -ge 2 ] || { echo "container-test: --binary needs a path" >&2; exit 2; }; BINARY=$2; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "container-test: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
BINARY=${BINARY:-$REPO/target/$(rustc -vV | sed -n 's/^host: //p')/release/judgebox}
CACHE=${JUDGEBOX_CTEST_CACHE:-/var/cache/judgebox-ctest}
TIMEOUT=${CTEST_TIMEOUT:-120}
log() { printf 'container-test: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }
[ "$(id -u)" = 0 ] || die "run as root (rootful podman)"
[ -x "$BINARY" ] || die "judgebox binary $BINARY missing"
file -L "$BINARY" 2>/dev/null | grep -q 'statically linked' || die "$BINARY is not static"
need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' || need+=(busybox-static)
[ -e "$(gcc -print-file-name=libc.a 2>/dev/null)" ] || need+=(gcc libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null || die "apt-get install ${need[*]} failed"
fi
PODMAN=(podman --runtime runc --cgroup-manager cgroupfs)
# Explicit low rlimits: podman's defaults (nofile 1048576, ...) fail on hosts where the
# caller's hard limits are lower and CAP_SYS_RESOURCE is missing.

WORK=$(mktemp -d /tmp/judgebox-ctest.XXXXXX)
NAMES=()
cleanup() {
  local rc=$? n
  for n in "${NAMES[@]}"; do "${PODMAN[@]}" rm -f -t 0 "$n" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- the image: busybox + judgebox + /rootfs, cached by content
mkdir -p "$CACHE/probes"
ROOT=$WORK/root
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,rootfs,var/lib/judgebox}
chmod 1777 "$ROOT/tmp"
install_busybox() {
  local root=$1 applet
  cp "$(command -v busybox)" "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list-full); do
    case $applet in bin/busybox | linuxrc) continue ;; esac
    mkdir -p "$root/$(dirname "$applet")"
    ln -sf /bin/busybox "$root/$applet"
  done
}
install_busybox "$ROOT"
install -m 0755 "$BINARY" "$ROOT/usr/bin/judgebox"
(cd "$ROOT/rootfs" && mkdir -p bin dev proc sys tmp etc probes && chmod 1777 tmp)
install_busybox "$ROOT/rootfs"
for name in alloc forkbomb; do
  src=$REPO/tests/probes/$name.c
  hash=$( (cat "$src"; gcc --version | head -n1) | sha256sum | cut -c1-16)
  out=$CACHE/probes/$name-$hash
  [ -x "$out" ] || { gcc -static -O2 -pthread -o "$out.tmp" "$src" && mv "$out.tmp" "$out"; }
  cp "$out" "$ROOT/rootfs/probes/$name"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$ROOT/etc/passwd"
echo 'nobody:x:65534:65534:nobody:/:/bin/false' >>"$ROOT/etc/passwd"
cp "$ROOT/etc/passwd" "$ROOT/rootfs/etc/passwd"
TAG=localhost/judgebox-ctest:$( (cd "$ROOT" && find . -printf '%p %l\n' | sort; cat usr/bin/judgebox rootfs/probes/*) | sha256sum | cut -c1-16)
if ! "${PODMAN[@]}" image exists "$TAG"; then
  log "importing $TAG"
  tar -C "$ROOT" -c . | "${PODMAN[@]}" import -q - "$TAG" >/dev/null || die "podman import failed"
fi
# Older test images (other binaries) are outdated: drop them.
for old in $("${PODMAN[@]}" images --format '{{.Repository}}:{{.Tag}}' | grep '^localhost/judgebox-ctest:' || true); do
  [ "$old" = "$TAG" ] || "${PODMAN[@]}" rmi -f "$old" >/dev/null 2>&1 || true
done

PASSED=0 FAILED=0
pass() { echo "PASS $1"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL $1: $2"; FAILED=$((FAILED + 1)); }
# ctr NAME OPTS... -- SCRIPT: runs SCRIPT with sh in a fresh container; sets OUT and RC.
ctr() {
  local name=judgebox-ctest-$$-$1 opts=()
  shift
  while [ "$1" != -- ]; do opts+=("$1"); shift; done
  shift
  NAMES+=("$name")
  set +e
  OUT=$(timeout -s KILL "$TIMEOUT" "${PODMAN[@]}" run --rm --ulimit nofile=4096:4096 --ulimit nproc=8192:8192 --name "$name" "${opts[@]}" "$TAG" /bin/sh -c "$1" 2>&1)
  RC=$?
  set -e
  "${PODMAN[@]}" rm -f -t 0 "$name" >/dev/null 2>&1 || true
  printf '%s\n' "$OUT" | sed 's/^/    | /'
}
has() { printf '%s\n' "$OUT" | grep -q -- "$1"; }

RUN='judgebox run --json --rootfs /rootfs'
echo "=== a) --privileged, private cgroup namespace"
ctr priv --privileged --cgroupns=private -- "
  judgebox doctor >/tmp/d 2>&1; echo doctor=\$?; tail -n 3 /tmp/d
  $RUN --memory 64M -- /probes/alloc 200; echo
  $RUN --pids 32 --wall-time 3 -- /probes/forkbomb; echo
  echo left=\$(pidof forkbomb alloc | wc -w)
  echo runcgroups=\$(find /sys/fs/cgroup -name 'run-*' -type d | wc -l)"
if [ "$RC" -ne 0 ]; then fail a.container "exit $RC"
else
  has 'doctor=0' && pass a.doctor_ok || fail a.doctor_ok "doctor did not exit 0"
  has '"status":"memory_limit"' && has '"memory":"cgroup[12]"' && pass a.memory_limit \
    || fail a.memory_limit "want status memory_limit enforced by a cgroup"
  has '"pids":"cgroup[12]"' && has 'left=0' && pass a.forkbomb \
    || fail a.forkbomb "want pids enforced by a cgroup and no forkbomb left"
  has 'runcgroups=0' && pass a.no_cgroup_left || fail a.no_cgroup_left "run cgroups left behind"
fi

echo "=== b) --cap-add SYS_ADMIN, read-only cgroupfs"
ctr sysadmin --cap-add SYS_ADMIN -- "
  judgebox doctor >/tmp/d 2>&1; echo doctor=\$?; grep -E 'fix:|cgroup mode' /tmp/d
  $RUN -- /bin/echo hello; echo
  $RUN --memory 64M -- /probes/alloc 200; echo"
if [ "$RC" -ne 0 ]; then fail b.container "exit $RC"
else
  has 'doctor=1' && has 'privileged' && pass b.doctor_degraded \
    || fail b.doctor_degraded "want doctor exit 1 naming --privileged"
  has '"status":"ok"' && has '"stdout":"hello\\n"' && pass b.runs_work \
    || fail b.runs_work "want a working run (status ok, stdout hello)"
  has '"memory":"rlimit"' && has 'malloc(200 MiB) failed' && pass b.enforcement_rlimit \
    || fail b.enforcement_rlimit "want enforcement memory rlimit"
fi

echo "=== c) default capabilities"
ctr default -- "judgebox doctor; echo doctor=\$?"
if [ "$RC" -ne 0 ]; then fail c.container "exit $RC"
else
  has 'doctor=3' && has 'CAP_SYS_ADMIN' && has -- '--cap-add SYS_ADMIN' && pass c.cannot_run \
    || fail c.cannot_run "want doctor exit 3 naming CAP_SYS_ADMIN and --cap-add SYS_ADMIN"
fi

echo "container-test: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
