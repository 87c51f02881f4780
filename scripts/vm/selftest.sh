#!/bin/sh
# Harness self-test (no judgebox needed): proves the VM gives what the judgebox
# scenarios rely on. Run it with
#   VM_SCENARIOS=scripts/vm/selftest.sh scripts/vm-test.sh --binary /usr/bin/jq
# (any dynamically linked binary works as --binary; it is installed as
# /usr/bin/judgebox). VMT_FORCE_FAIL=1 adds one deliberate FAIL to check that the host
# script exits non-zero.
. /vmtest/lib.sh

CG=/sys/fs/cgroup

echo "=== environment"
info "kernel $(uname -r); cmdline: $(cat /proc/cmdline)"
info "cgroup.controllers: $(cat $CG/cgroup.controllers 2>&1)"
info "mounts: $(awk '{ printf "%s(%s) ", $2, $3 }' /proc/mounts)"
info "memory: $(awk '/MemTotal|MemAvailable/ { printf "%s %s kB ", $1, $2 }' /proc/meminfo)"

# --- cgroup v2 is the only hierarchy, with the controllers judgebox needs
check vm.cgroup2_mounted "no cgroup2 at $CG in /proc/mounts" \
    grep -q "^cgroup2 $CG cgroup2 " /proc/mounts
check vm.no_cgroup_v1 "a cgroup v1 hierarchy is mounted" \
    sh -c '! grep -q " cgroup " /proc/mounts'
for c in memory pids cpu; do
    check "vm.controller_$c" "'$c' missing from cgroup.controllers" \
        grep -qw $c $CG/cgroup.controllers
done
check vm.enable_controllers "cannot write +memory +pids +cpu to subtree_control" \
    sh -c "echo '+memory +pids +cpu' > $CG/cgroup.subtree_control"

# --- memory.max=32M OOM-kills a 64 MiB dd buffer
mkdir -p $CG/selftest-mem
echo 32M >$CG/selftest-mem/memory.max
sh -c "echo \$\$ > $CG/selftest-mem/cgroup.procs && exec dd if=/dev/zero of=/dev/null bs=64M count=1" \
    >/tmp/dd.out 2>&1
rc=$?
oom=$(awk '$1 == "oom_kill" { print $2 }' $CG/selftest-mem/memory.events)
info "dd in memory.max=32M: exit $rc, memory.events oom_kill=$oom, memory.peak=$(cat $CG/selftest-mem/memory.peak 2>/dev/null)"
[ "${oom:-0}" -ge 1 ] && [ $rc -ne 0 ]
verdict $? vm.memory_oom_kill "dd was not OOM-killed (exit $rc, oom_kill=$oom)"
rmdir $CG/selftest-mem

# --- the alloc probe under memory.max, and memory.peak accounting
mkdir -p $CG/selftest-peak
echo 256M >$CG/selftest-peak/memory.max
out=$(sh -c "echo \$\$ > $CG/selftest-peak/cgroup.procs && exec /probes/alloc 100")
peak=$(cat $CG/selftest-peak/memory.peak)
info "alloc 100 in a fresh cgroup: '$out', memory.peak=$peak"
[ "$out" = ok ] && fcmp "$peak" '>=' 94371840 && fcmp "$peak" '<=' 115343360
verdict $? vm.memory_peak "alloc 100: output '$out', memory.peak $peak not within 10% of 100 MiB"
rmdir $CG/selftest-peak

# --- pids.max stops the forkbomb; cgroup.kill ends it
mkdir -p $CG/selftest-pids
echo 16 >$CG/selftest-pids/pids.max
sh -c "echo \$\$ > $CG/selftest-pids/cgroup.procs && exec /probes/forkbomb" &
sleep 2
cur=$(cat $CG/selftest-pids/pids.current)
max=$(awk '$1 == "max" { print $2 }' $CG/selftest-pids/pids.events)
echo 1 >$CG/selftest-pids/cgroup.kill
i=0
# (cgroupfs files have size 0: test -s cannot tell an empty cgroup.procs; poll
# cgroup.events instead.)
while ! grep -qx 'populated 0' $CG/selftest-pids/cgroup.events && [ $i -lt 50 ]; do
    sleep 0.1
    i=$((i + 1))
done
wait 2>/dev/null
info "forkbomb in pids.max=16: pids.current=$cur, pids.events max=$max"
[ "$cur" = 16 ] && [ "${max:-0}" -gt 0 ]
verdict $? vm.pids_limit "pids.current $cur (want 16) / pids.events max $max (want > 0)"
check vm.cgroup_kill_rmdir "cannot empty and remove the forkbomb cgroup" rmdir $CG/selftest-pids

# --- cpu.max throttles burn; CPU time from cpu.stat
mkdir -p $CG/selftest-cpu
echo "20000 100000" >$CG/selftest-cpu/cpu.max
t0=$(now_s)
out=$(sh -c "echo \$\$ > $CG/selftest-cpu/cgroup.procs && exec /probes/burn 0.2")
secs=$(fsub "$(now_s)" "$t0")
usage=$(awk '$1 == "usage_usec" { print $2 / 1e6 }' $CG/selftest-cpu/cpu.stat)
thr=$(awk '$1 == "nr_throttled" { print $2 }' $CG/selftest-cpu/cpu.stat)
info "burn 0.2 at cpu.max 20%: '$out' in ${secs}s wall, cpu usage ${usage}s, nr_throttled $thr"
[ "$out" = ok ] && fcmp "$secs" '>=' 0.6 && [ "${thr:-0}" -gt 0 ]
verdict $? vm.cpu_max "burn 0.2 under 20% quota: out '$out', wall ${secs}s (want >= 0.6), throttled $thr"
rmdir $CG/selftest-cpu

# --- probes and the sandbox rootfs
check vm.probe_alloc "/probes/alloc 8 did not print ok" [ "$(/probes/alloc 8)" = ok ]
check vm.probe_burn "/probes/burn 0.1 did not print ok" [ "$(/probes/burn 0.1)" = ok ]
out=$(timeit -q 5 /bin/true)
info "timeit 5 /bin/true: $out"
check vm.probe_timeit "timeit output '$out'" sh -c "echo '$out' | grep -q '^median_ms=[0-9.]* .*failures=0$'"
check vm.rootfs_chroot "chroot /rootfs /probes/alloc 1 failed" \
    [ "$(chroot /rootfs /probes/alloc 1)" = ok ]
check vm.rootfs_busybox "chroot /rootfs /bin/sh -c 'echo hi' failed" \
    [ "$(chroot /rootfs /bin/sh -c 'echo hi')" = hi ]
# pivot_root must work in a new mount namespace (it does not on the initramfs root,
# hence /init's switch_root to a tmpfs).
out=$(unshare -m sh -c 'mount --make-rprivate / && mount --bind /rootfs /rootfs &&
    cd /rootfs && mkdir -p .old && pivot_root . .old && umount -l /.old && echo pivoted' 2>&1)
check vm.pivot_root "pivot_root into /rootfs in a new mount namespace: $out" [ "$out" = pivoted ]
check vm.namespaces "unshare -p -f -n -i -u -m -U failed" \
    unshare -p -f -n -i -u -m -U --mount-proc true
check vm.seccomp_available "no Seccomp line in /proc/self/status" grep -q '^Seccomp:' /proc/self/status
check vm.overlay_fs "overlay not in /proc/filesystems (module not loaded?)" \
    grep -qw overlay /proc/filesystems
check vm.tmp_writable "/tmp is not writable" sh -c 'echo x > /tmp/w && rm /tmp/w'

# --- the dynamically linked --binary runs with the copied libraries
out=$(judgebox --version 2>&1)
rc=$?
info "judgebox --version: exit $rc: $(echo "$out" | head -n1)"
check vm.binary_runs "/usr/bin/judgebox --version: exit $rc: $out" [ $rc = 0 ]
case $out in
jq-*)
    out=$(echo '{"a":41}' | judgebox -c '{b: (.a + 1)}' 2>&1)
    check vm.binary_jq_filter "jq filter gave '$out'" [ "$out" = '{"b":42}' ]
    ;;
esac

if [ "${VMT_FORCE_FAIL:-0}" = 1 ]; then
    fail selftest.deliberate "VMT_FORCE_FAIL=1 asked for one failure"
fi
summary
