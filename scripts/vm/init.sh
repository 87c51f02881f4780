#!/bin/busybox sh
# /init of the judgebox test VM (busybox sh, PID 1). Copied in by scripts/vm-test.sh.
#
# Stage 1 (in the kernel's initramfs): copy everything onto a tmpfs and switch_root to
# it. pivot_root(2) refuses to move the initramfs root ("rootfs"), and a sandbox that
# pivot_roots must see the same kind of / as on a real host.
# Stage 2: mount what a systemd host has (proc, sysfs, devtmpfs, cgroup2 at
# /sys/fs/cgroup, tmpfs /tmp and /run; / shared), load modules, run /scenarios.sh or the
# benchmark, power off. The host reads the console: PASS/FAIL lines and the summary.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb

halt_vm() {
    sync
    poweroff -f
    sleep 3
    reboot -f # with qemu -no-reboot this ends the VM too
    sleep 3
    echo o >/proc/sysrq-trigger
}

if [ "${VMTEST_STAGE:-1}" = 1 ]; then
    mount -t proc proc /proc
    if ! mount -t tmpfs -o mode=0755 tmpfs /newroot; then
        echo "vmtest: FATAL: cannot mount tmpfs for the new root"
        halt_vm
    fi
    for e in /* /.[!.]*; do
        [ -e "$e" ] || continue
        case $e in
        /newroot | /proc | /sys | /dev) mkdir -p "/newroot$e" ;;
        *) cp -a "$e" /newroot/ ;;
        esac
    done
    umount /proc
    export VMTEST_STAGE=2
    exec switch_root /newroot /init
    echo "vmtest: FATAL: switch_root failed"
    halt_vm
fi

# ---- stage 2: / is a tmpfs
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs -o mode=0755 devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
# systemd mounts the unified hierarchy with these options.
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 /sys/fs/cgroup 2>/dev/null \
    || mount -t cgroup2 cgroup2 /sys/fs/cgroup \
    || echo "vmtest: WARNING: cannot mount cgroup2 at /sys/fs/cgroup"
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
mount --make-rshared /
ln -sf /proc/self/fd /dev/fd 2>/dev/null
hostname judgebox-vm
# Keep kernel messages (OOM kills, ...) off the console so they cannot garble the
# result lines; they stay readable with dmesg.
dmesg -n 1

while read -r ko; do
    [ -n "$ko" ] || continue
    insmod "$ko" || echo "vmtest: WARNING: insmod $ko failed"
done </vmtest/modules

set -a
. /vmtest/env
set +a

read -r up _ </proc/uptime
echo "vmtest: init ready at uptime ${up}s (kernel $(uname -r), mode $VMTEST_MODE)"

cd /
if [ "$VMTEST_MODE" = bench ]; then
    sh /vmtest/bench.sh
else
    sh /scenarios.sh
fi
echo "vmtest: scenarios exited with status $?"

read -r up _ </proc/uptime
echo "vmtest: powering off at uptime ${up}s"
halt_vm
