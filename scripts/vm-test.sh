#!/usr/bin/env bash
# Run judgebox's cgroup-v2 tests in a throwaway VM.
#
# This host is hybrid cgroup v1/v2, so the pure-v2 code path is exercised in
# qemu-system-x86_64 (TCG, no KVM) booting Debian's kernel with cgroup_no_v1=all and a
# busybox initramfs that holds the judgebox binary, its shared libraries, a tiny test
# rootfs (/rootfs) and the scenario scripts from scripts/vm/. See scripts/vm/README.md.
#
# usage: scripts/vm-test.sh [--binary PATH] [--keep] [--bench] [--scenarios FILE]
#                           [--timeout SECS]
#
# Exit status: 0 every scenario passed; 1 a scenario failed, the VM printed no summary
# line or timed out; 2 harness error (bad usage, missing prerequisite, download failed).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
VM_SRC=$SCRIPT_DIR/vm
CACHE=${JUDGEBOX_CACHE:-$REPO/.cache}/vm

MODE="test"
BINARY=""
KEEP=0
SCENARIOS=${VM_SCENARIOS:-$VM_SRC/scenarios.sh}
TIMEOUT=${VM_TIMEOUT:-600}
VM_MEM=${VM_MEM:-1024M}
VM_SMP=${VM_SMP:-2}
BENCH_N=${VM_BENCH_N:-200}
# Kernel modules to load in the VM (with their dependencies) unless built in.
VM_MODULES=${VM_MODULES:-overlay}
# Kernel options the tests rely on; each must be built in (=y).
REQUIRED_CONFIG="CGROUPS MEMCG CGROUP_PIDS CGROUP_SCHED FAIR_GROUP_SCHED CFS_BANDWIDTH
  CPUSETS NAMESPACES PID_NS NET_NS IPC_NS UTS_NS USER_NS SECCOMP SECCOMP_FILTER TMPFS
  DEVTMPFS PROC_FS SYSFS BLK_DEV_INITRD RD_GZIP SERIAL_8250 SERIAL_8250_CONSOLE
  BINFMT_ELF BINFMT_SCRIPT FUTEX"

usage() {
    cat <<EOF
usage: scripts/vm-test.sh [options]

Boots a cgroup-v2-only VM (qemu TCG, Debian kernel, cgroup_no_v1=all) and runs
judgebox's cgroup scenarios in it; the VM console streams to stdout.

options:
  --binary PATH     judgebox binary to test (default: target/<host triple>/release/judgebox, built
                    with 'cargo build --release' if missing)
  --keep            keep the work dir (initramfs, staging tree) and print its path
  --bench           run the cgroup setup/teardown benchmark instead of the scenarios
  --scenarios FILE  scenario script to run in the VM (default scripts/vm/scenarios.sh;
                    env VM_SCENARIOS)
  --timeout SECS    host-side limit for the whole VM run (default 600; env VM_TIMEOUT)
  -h, --help        this help

environment: JUDGEBOX_CACHE (cache root, default <repo>/.cache; files go in its vm/),
  VM_MEM (1024M), VM_SMP (2), VM_BENCH_N (200), VM_MODULES (overlay),
  VM_KERNEL_VERSION (e.g. 6.1.0-56-amd64; default: the newest cached kernel, else what
  linux-image-amd64 depends on), VM_KERNEL_UPDATE=1 (fetch what linux-image-amd64
  depends on now, even with a kernel cached),
  VM_KERNEL_FORMAT (pvh: boot the extracted ELF vmlinux, ~6 s faster; bzimage),
  VM_APPEND (extra kernel command line), VMT_* (passed into the VM's environment).
EOF
}

log() { printf 'vm-test: %s\n' "$*" >&2; }
die() {
    printf 'vm-test: error: %s\n' "$*" >&2
    exit 2
}

while [ $# -gt 0 ]; do
    case $1 in
    --binary) [ $# -ge 2 ] || die "--binary needs a path"; BINARY=$2; shift ;;
    --binary=*) BINARY=${1#*=} ;;
    --keep) KEEP=1 ;;
    --bench) MODE=bench ;;
    --scenarios) [ $# -ge 2 ] || die "--scenarios needs a file"; SCENARIOS=$2; shift ;;
    --scenarios=*) SCENARIOS=${1#*=} ;;
    --timeout) [ $# -ge 2 ] || die "--timeout needs seconds"; TIMEOUT=$2; shift ;;
    --timeout=*) TIMEOUT=${1#*=} ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "--timeout must be whole seconds, got '$TIMEOUT'"
[[ $BENCH_N =~ ^[0-9]+$ ]] || die "VM_BENCH_N must be a number, got '$BENCH_N'"
[ -f "$SCENARIOS" ] || die "scenario file not found: $SCENARIOS"
[ "$(id -u)" = 0 ] || die "run as root (apt-get, mknod for the initramfs)"

WORK=""
QEMU_PID=""
cleanup() {
    local rc=$?
    if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
        log "stopping the VM (timeout pid $QEMU_PID)"
        kill -TERM "$QEMU_PID" 2>/dev/null || true
        wait "$QEMU_PID" 2>/dev/null || true
    fi
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "$KEEP" = 1 ]; then
            log "kept work dir: $WORK"
        else
            rm -rf "$WORK"
        fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
T_START=$(now)

# ---------------------------------------------------------------- prerequisites
ensure_prereqs() {
    local need=()
    command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
    command -v cpio >/dev/null || need+=(cpio)
    command -v gzip >/dev/null || need+=(gzip)
    if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed'; then
        need+=(busybox-static)
    fi
    command -v gcc >/dev/null || need+=(gcc)
    if ! command -v gcc >/dev/null || [ ! -e "$(gcc -print-file-name=libc.a)" ]; then
        need+=(libc6-dev)
    fi
    if [ ${#need[@]} -gt 0 ]; then
        log "installing missing packages: ${need[*]}"
        apt-get update -qq || die "apt-get update failed"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
            || die "apt-get install ${need[*]} failed"
    fi
    BUSYBOX=$(command -v busybox) || die "busybox not found after installing busybox-static"
    BUSYBOX=$(readlink -f "$BUSYBOX")
    if ldd "$BUSYBOX" >/dev/null 2>&1; then
        die "$BUSYBOX is dynamically linked; install busybox-static"
    fi
}

# ---------------------------------------------------------------- kernel
resolve_kernel_version() {
    apt-cache depends linux-image-amd64 2>/dev/null \
        | sed -n 's/^ *Depends: linux-image-\([0-9][^ ]*-amd64\)$/\1/p' | head -n1
}

# Newest kernel already complete in the cache (fallback when apt knows none).
cached_kernel_version() {
    local d
    for d in "$CACHE"/kernel/*/.ok; do
        [ -e "$d" ] || continue
        d=${d%/.ok}
        printf '%s\n' "${d##*/}"
    done | sort -V | tail -n1
}

ensure_kernel() {
    KVER=${VM_KERNEL_VERSION:-}
    # A cached kernel is reused (tests stay on one kernel, no apt-cache look-up, which
    # takes a second) unless VM_KERNEL_UPDATE=1 asks for the one apt knows now.
    if [ -z "$KVER" ] && [ "${VM_KERNEL_UPDATE:-0}" != 1 ]; then
        KVER=$(cached_kernel_version)
    fi
    if [ -z "$KVER" ]; then
        KVER=$(resolve_kernel_version)
        if [ -z "$KVER" ] && [ -z "$(cached_kernel_version)" ]; then
            log "apt knows no linux-image-amd64; running apt-get update"
            apt-get update -qq || die "apt-get update failed"
            KVER=$(resolve_kernel_version)
        fi
        [ -n "$KVER" ] || KVER=$(cached_kernel_version)
        [ -n "$KVER" ] || die "cannot find the kernel version (apt-cache depends linux-image-amd64)"
    fi
    KDIR=$CACHE/kernel/$KVER
    if [ ! -e "$KDIR/.ok" ]; then
        local fallback
        fallback=$(cached_kernel_version)
        if ! fetch_kernel; then
            if [ -z "${VM_KERNEL_VERSION:-}" ] && [ -n "$fallback" ]; then
                log "warning: could not fetch linux-image-$KVER; using cached $fallback"
                KVER=$fallback
                KDIR=$CACHE/kernel/$KVER
            else
                die "could not fetch linux-image-$KVER"
            fi
        fi
    fi
    KDEB=$(ls "$KDIR"/linux-image-*.deb)
    check_kernel_config
    choose_boot_image
}

# Under TCG, decompressing the bzImage takes ~6 s of every boot. A kernel built with
# CONFIG_PVH boots straight from its uncompressed ELF vmlinux (qemu -kernel loads it
# through the PVH entry point): extract it once from the bzImage and cache it.
# VM_KERNEL_FORMAT=bzimage forces the vmlinuz.
choose_boot_image() {
    BOOT_IMAGE=$KDIR/vmlinuz
    [ "${VM_KERNEL_FORMAT:-pvh}" = pvh ] || return 0
    grep -qx 'CONFIG_PVH=y' "$KDIR/config" || return 0
    if [ ! -s "$KDIR/vmlinux" ]; then
        local magic cmd off
        case $(grep -E '^CONFIG_KERNEL_(XZ|GZIP|ZSTD)=y' "$KDIR/config") in
        *XZ*) magic=$'\xfd7zXZ\x00' cmd="xz -dc --single-stream" ;;
        *GZIP*) magic=$'\x1f\x8b\x08' cmd="gzip -dc" ;;
        *ZSTD*) magic=$'\x28\xb5\x2f\xfd' cmd="zstd -qdc" ;;
        *) log "unknown kernel compression; booting the bzImage"; return 0 ;;
        esac
        off=$(LC_ALL=C grep -abo "$magic" "$KDIR/vmlinuz" | head -n1 | cut -d: -f1)
        if [ -z "$off" ] || ! command -v "${cmd%% *}" >/dev/null; then
            log "cannot extract vmlinux from the bzImage; booting the bzImage (slower)"
            return 0
        fi
        log "extracting vmlinux (PVH boot) from vmlinuz"
        tail -c +$((off + 1)) "$KDIR/vmlinuz" | $cmd >"$KDIR/vmlinux.tmp" 2>/dev/null || true
        if [ "$(head -c4 "$KDIR/vmlinux.tmp" | od -An -tx1 | tr -d ' ')" != 7f454c46 ]; then
            rm -f "$KDIR/vmlinux.tmp"
            log "vmlinux extraction gave no ELF; booting the bzImage (slower)"
            return 0
        fi
        mv "$KDIR/vmlinux.tmp" "$KDIR/vmlinux"
    fi
    BOOT_IMAGE=$KDIR/vmlinux
}

fetch_kernel() {
    log "fetching kernel linux-image-$KVER into $KDIR"
    local dl=$KDIR.partial
    rm -rf "$dl"
    mkdir -p "$dl"
    # apt-get download warns that it runs unsandboxed as root; that is harmless here.
    if ! (cd "$dl" && apt-get download -q "linux-image-$KVER" 2> >(grep -v 'unsandboxed' >&2)); then
        rm -rf "$dl"
        return 1
    fi
    local deb
    deb=$(ls "$dl"/linux-image-*.deb) || return 1
    # Only /boot and the module index files: the whole module tree is ~400 MB.
    mkdir -p "$dl/x"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$dl/x" --wildcards \
        "./boot/*" "./lib/modules/$KVER/modules.order" "./lib/modules/$KVER/modules.builtin" \
        || { rm -rf "$dl"; return 1; }
    mv "$dl/x/boot/vmlinuz-$KVER" "$dl/vmlinuz"
    mv "$dl/x/boot/config-$KVER" "$dl/config"
    mv "$dl/x/lib/modules/$KVER/modules.order" "$dl/x/lib/modules/$KVER/modules.builtin" "$dl/"
    rm -rf "$dl/x"
    mkdir -p "$dl/modules"
    touch "$dl/.ok"
    rm -rf "$KDIR"
    mv "$dl" "$KDIR"
}

check_kernel_config() {
    local opt bad=()
    for opt in $REQUIRED_CONFIG; do
        grep -qx "CONFIG_$opt=y" "$KDIR/config" || bad+=("CONFIG_$opt")
    done
    [ ${#bad[@]} -eq 0 ] || die "kernel $KVER lacks built-in ${bad[*]}"
}

# Print "name path-in-deb" for a module name, or nothing if it is not in the kernel.
module_path() {
    local name=$1 pat
    pat=$(printf '%s' "$name" | sed 's/[-_]/[-_]/g')
    grep -E "(^|/)${pat}\.ko(\.xz|\.zst|\.gz)?$" "$KDIR/modules.order" | head -n1
}

module_builtin() {
    local pat
    pat=$(printf '%s' "$1" | sed 's/[-_]/[-_]/g')
    grep -qE "(^|/)${pat}\.ko$" "$KDIR/modules.builtin"
}

# Ensure $KDIR/modules/<name>.ko exists (uncompressed), extracting it from the deb.
fetch_module() {
    local name=$1 rel file
    file=$KDIR/modules/$name.ko
    [ -s "$file" ] && return 0
    rel=$(module_path "$name")
    [ -n "$rel" ] || die "kernel $KVER has no module '$name' (neither built in nor in modules.order)"
    local tmp=$KDIR/modules/.x.$$
    mkdir -p "$tmp"
    dpkg-deb --fsys-tarfile "$KDEB" | tar -x -C "$tmp" "./lib/modules/$KVER/$rel" \
        || die "cannot extract $rel from $KDEB"
    local got=$tmp/lib/modules/$KVER/$rel
    case $got in
    *.xz) xz -dc "$got" >"$file.tmp" ;;
    *.zst) zstd -qdc "$got" >"$file.tmp" ;;
    *.gz) gzip -dc "$got" >"$file.tmp" ;;
    *) cp "$got" "$file.tmp" ;;
    esac
    mv "$file.tmp" "$file"
    rm -rf "$tmp"
}

# Resolve VM_MODULES to load order (dependencies first) in MODULE_ORDER.
MODULE_ORDER=()
add_module() {
    local name=${1//-/_} dep m
    for m in "${MODULE_ORDER[@]}"; do [ "$m" = "$name" ] && return 0; done
    if module_builtin "$name"; then return 0; fi
    fetch_module "$name"
    for dep in $(tr '\0' '\n' <"$KDIR/modules/$name.ko" | sed -n 's/^depends=//p' | tr ',' ' '); do
        add_module "$dep"
    done
    MODULE_ORDER+=("$name")
}

# ---------------------------------------------------------------- probes
# Static probes are cached by a hash of their source and the compiler version.
build_probes() {
    local src name hash out
    mkdir -p "$CACHE/probes"
    PROBES=()
    for src in "$REPO"/tests/probes/*.c "$VM_SRC"/probes/*.c; do
        name=$(basename "$src" .c)
        hash=$( (cat "$src"; gcc --version | head -n1) | sha256sum | cut -c1-16)
        out=$CACHE/probes/$name-$hash
        if [ ! -x "$out" ]; then
            log "compiling probe $name"
            gcc -static -O2 -pthread -o "$out.tmp" "$src" || die "gcc failed for $src"
            mv "$out.tmp" "$out"
        fi
        PROBES+=("$name=$out")
    done
}

# ---------------------------------------------------------------- judgebox binary
ensure_binary() {
    if [ -z "$BINARY" ]; then
        BINARY=$REPO/target/$(rustc -vV | sed -n "s/^host: //p")/release/judgebox
        if [ ! -x "$BINARY" ]; then
            log "$BINARY missing; running cargo build --release"
            (cd "$REPO" && cargo build --release) || die "cargo build --release failed"
        fi
    fi
    [ -f "$BINARY" ] && [ -x "$BINARY" ] || die "binary not found or not executable: $BINARY"
    BINARY=$(readlink -f "$BINARY")
}

# Shared objects the binary needs (ldd), including the dynamic loader; none if static.
binary_libs() {
    local out
    if ! out=$(ldd "$1" 2>&1); then
        case $out in
        *"not a dynamic executable"* | *"statically linked"*) return 0 ;;
        *) die "ldd $1 failed: $out" ;;
        esac
    fi
    printf '%s\n' "$out" | awk '
        /not found/ { print "MISSING " $1; next }
        $2 == "=>" && $3 ~ /^\// { print $3; next }
        $1 ~ /^\// { print $1 }'
}

# ---------------------------------------------------------------- initramfs
# Busybox applet links (busybox --list-full gives e.g. usr/bin/awk) pointing at /bin/busybox.
install_busybox() {
    local root=$1 applet
    mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin"
    cp "$BUSYBOX" "$root/bin/busybox"
    for applet in $("$BUSYBOX" --list-full); do
        case $applet in bin/busybox | linuxrc) continue ;; esac
        ln -sf /bin/busybox "$root/$applet"
    done
}

shell_quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }

build_initramfs() {
    ROOT=$WORK/root
    mkdir -p "$ROOT"
    (cd "$ROOT" && mkdir -p dev proc sys tmp run etc root newroot lib lib64 \
        usr/lib usr/local/bin probes vmtest rootfs)
    install_busybox "$ROOT"
    mknod -m 600 "$ROOT/dev/console" c 5 1
    mknod -m 666 "$ROOT/dev/null" c 1 3

    # judgebox and its libraries, at the paths ldd reports (loader included).
    cp -L "$BINARY" "$ROOT/usr/bin/judgebox"
    chmod 755 "$ROOT/usr/bin/judgebox"
    local lib libs=() ldd_out
    ldd_out=$(binary_libs "$BINARY") # exits here if ldd fails
    while IFS= read -r lib; do
        [ -n "$lib" ] || continue
        case $lib in MISSING*) die "$BINARY needs ${lib#MISSING }, which ldd cannot find" ;; esac
        libs+=("$lib")
    done <<<"$ldd_out"
    # glibc loads NSS modules with dlopen; add them if the binary uses glibc.
    if printf '%s\n' "${libs[@]}" | grep -q '/libc\.so\.6$'; then
        lib=/lib/x86_64-linux-gnu/libnss_files.so.2
        if [ -e "$lib" ]; then libs+=("$lib"); fi
    fi
    for lib in "${libs[@]}"; do
        mkdir -p "$ROOT$(dirname "$lib")"
        cp -L "$lib" "$ROOT$lib"
    done
    LIB_COUNT=${#libs[@]}

    # Minimal /etc for the VM and for the sandbox rootfs.
    local etc
    for etc in "$ROOT/etc" "$ROOT/rootfs/etc"; do
        mkdir -p "$etc"
        printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$etc/passwd"
        printf 'root:x:0:\nnogroup:x:65534:\n' >"$etc/group"
        printf 'passwd: files\ngroup: files\nhosts: files\n' >"$etc/nsswitch.conf"
        printf '127.0.0.1 localhost\n' >"$etc/hosts"
    done

    # Sandbox test rootfs: busybox with applet links, the probes, empty mount points.
    (cd "$ROOT/rootfs" && mkdir -p dev proc sys tmp run root probes && chmod 1777 tmp)
    install_busybox "$ROOT/rootfs"
    local p name file
    for p in "${PROBES[@]}"; do
        name=${p%%=*} file=${p#*=}
        cp "$file" "$ROOT/probes/$name"
        [ "$name" = timeit ] && cp "$file" "$ROOT/usr/local/bin/timeit"
        [ "$name" = timeit ] || cp "$file" "$ROOT/rootfs/probes/$name"
    done

    # Kernel modules, in load order.
    local m
    : >"$ROOT/vmtest/modules"
    for m in "${MODULE_ORDER[@]}"; do
        mkdir -p "$ROOT/lib/modules/$KVER"
        cp "$KDIR/modules/$m.ko" "$ROOT/lib/modules/$KVER/$m.ko"
        echo "/lib/modules/$KVER/$m.ko" >>"$ROOT/vmtest/modules"
    done

    # Init, scenario scripts, settings.
    cp "$VM_SRC/init.sh" "$ROOT/init"
    cp "$VM_SRC/lib.sh" "$ROOT/vmtest/lib.sh"
    cp "$VM_SRC/bench.sh" "$ROOT/vmtest/bench.sh"
    cp "$SCENARIOS" "$ROOT/scenarios.sh"
    chmod 755 "$ROOT/init" "$ROOT/scenarios.sh" "$ROOT/vmtest/bench.sh"
    {
        echo "VMTEST_MODE=$MODE"
        echo "VMTEST_BENCH_N=$BENCH_N"
        echo "VMTEST_KVER=$KVER"
        echo "VMTEST_SCENARIOS_NAME=$(shell_quote "$(basename "$SCENARIOS")")"
        local var
        for var in $(compgen -e | grep '^VMT_' || true); do
            echo "$var=$(shell_quote "${!var}")"
        done
    } >"$ROOT/vmtest/env"

    INITRD=$WORK/initramfs.cpio.gz
    (cd "$ROOT" && find . -print0 | cpio --null -o -H newc --owner=0:0 --quiet) \
        | gzip -1 >"$INITRD"
}

# ---------------------------------------------------------------- main
ensure_prereqs
# One run at a time fills the cache (the VMs themselves may run in parallel).
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
ensure_kernel
for m in $VM_MODULES; do add_module "$m"; done
build_probes
flock -u 9
exec 9>&-
ensure_binary

WORK=$(mktemp -d /tmp/judgebox-vm.XXXXXX)
build_initramfs
log "kernel $KVER ($(basename "$BOOT_IMAGE")); binary $BINARY (+$LIB_COUNT libs); modules: ${MODULE_ORDER[*]:-none}"
log "initramfs $(du -h "$INITRD" | cut -f1) built in $(elapsed "$T_START") s; scenarios: $SCENARIOS; mode $MODE"

mkdir -p "$CACHE/logs"
LOG=$CACHE/logs/$MODE-$(date +%Y%m%d-%H%M%S).log
ln -sfn "$(basename "$LOG")" "$CACHE/logs/latest.log"
# keep the 20 newest logs
find "$CACHE/logs" -maxdepth 1 -type f -name '*-*.log' -printf '%T@ %p\n' \
    | sort -rn | tail -n +21 | cut -d' ' -f2- | xargs -r rm -f

APPEND="console=ttyS0 cgroup_no_v1=all panic=-1 quiet ${VM_APPEND:-}"
# shellcheck disable=SC2054 # the commas belong to qemu options
QEMU=(qemu-system-x86_64 -accel tcg,thread=multi -smp "$VM_SMP" -m "$VM_MEM"
    -nodefaults -no-user-config -display none
    -chardev stdio,id=con0,signal=off -serial chardev:con0
    -no-reboot -kernel "$BOOT_IMAGE" -initrd "$INITRD" -append "$APPEND")
log "booting VM (-smp $VM_SMP -m $VM_MEM, timeout ${TIMEOUT}s); console log: $LOG"
T_BOOT=$(now)
# qemu runs in the background (so that INT/TERM reach our trap at once, which stops
# it); the console streams through a FIFO to stdout and the log, CRs stripped.
mkfifo "$WORK/console"
sed -u 's/\r$//' <"$WORK/console" | tee "$LOG" &
READER_PID=$!
timeout -k 10 "$TIMEOUT" "${QEMU[@]}" </dev/null >"$WORK/console" 2>&1 &
QEMU_PID=$!
QEMU_RC=0
wait "$QEMU_PID" || QEMU_RC=$?
QEMU_PID=""
wait "$READER_PID" || true
VM_SECS=$(elapsed "$T_BOOT")

summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$LOG" | tail -n1 || true)
ready=$(sed -n 's/^vmtest: init ready at uptime \([0-9.]*\)s.*/\1/p' "$LOG" | head -n1)
log "VM run ${VM_SECS}s wall (init ready at guest uptime ${ready:-?}s), total $(elapsed "$T_START")s; qemu exit $QEMU_RC"
if [ "$MODE" = bench ]; then
    bench=$(sed -n 's/^BENCH //p' "$LOG" | tail -n1)
    log "bench: ${bench:-no BENCH line}"
fi
if [ "$QEMU_RC" = 124 ] || [ "$QEMU_RC" = 137 ]; then
    log "FAILED: the VM did not finish within ${TIMEOUT}s (killed)"
    exit 1
fi
if [ -z "$summary" ]; then
    log "FAILED: no 'N passed, N failed' summary line from the VM (see $LOG)"
    exit 1
fi
passed=${summary%% passed*}
failed=${summary#*, }
failed=${failed%% failed*}
if [ "$failed" -gt 0 ]; then
    log "FAILED: $summary"
    grep '^FAIL ' "$LOG" | sed 's/^/  /' >&2 || true
    exit 1
fi
if [ "$passed" -eq 0 ]; then
    log "FAILED: the VM ran no scenario"
    exit 1
fi
log "OK: $summary"
