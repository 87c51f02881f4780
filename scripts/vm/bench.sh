#!/bin/sh
# Benchmark (scripts/vm-test.sh --bench): the per-run cost of judgebox's cgroup
# setup + teardown on cgroup v2, measured as the difference of median wall times of
# `judgebox run --rootfs /rootfs -- /bin/true` with and without --no-cgroup.
# N=VM_BENCH_N (200) timed runs per variant. Runs inside the VM (TCG: absolute times are many times a real host's; the
# difference is what matters). Both variants alternate in rounds so that drift in
# the shared host's load hits both alike.
. /vmtest/lib.sh

N=${VMTEST_BENCH_N:-200}
ROUNDS=${VMT_BENCH_ROUNDS:-4}
PER=$(((N + ROUNDS - 1) / ROUNDS))
info "kernel $(uname -r); cgroup.controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
info "bench: $N runs per variant in $ROUNDS rounds of $PER"

# Sanity: one run of each, showing output if it fails.
for v in cgroup no-cgroup; do
    if [ $v = cgroup ]; then set --; else set -- --no-cgroup; fi
    if judgebox run --rootfs /rootfs "$@" -- /bin/true >/tmp/b.out 2>&1; then
        pass "bench.sanity_$v"
    else
        fail "bench.sanity_$v" "judgebox run $* -- /bin/true exited $?"
        show /tmp/b.out
    fi
done

# The kernel's floor for a fresh cgroup per run (mkdir + rmdir, and with the run's limits
# written), in-process; judgebox's parent exists once the sanity runs above are done.
if FLOOR=$(/probes/cgfloor /sys/fs/cgroup/judgebox 100); then
    info "kernel floor per fresh cgroup: $FLOOR"
else
    fail bench.floor "cgfloor /sys/fs/cgroup/judgebox failed"
fi

# Calibration: a bare fork+exec of /bin/true in this VM (host: ~1 ms).
info "VM baseline fork+exec /bin/true: $(timeit -q 50 /bin/true)"

rm -f /tmp/samples.cgroup /tmp/samples.nocgroup /tmp/fails.cgroup /tmp/fails.nocgroup
r=1
while [ $r -le $ROUNDS ]; do
    timeit -q -w 3 -s /tmp/samples.cgroup $PER \
        judgebox run --rootfs /rootfs -- /bin/true >>/tmp/fails.cgroup
    timeit -q -w 3 -s /tmp/samples.nocgroup $PER \
        judgebox run --rootfs /rootfs --no-cgroup -- /bin/true >>/tmp/fails.nocgroup
    r=$((r + 1))
done

# median of all samples (ms), sample count, failed runs (from timeit's summary lines)
agg() {
    _med=$(sort -n "$1" | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print ""; exit }
        printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }')
    _n=$(wc -l <"$1")
    _f=$(sed -n 's/.*failures=\([0-9]*\).*/\1/p' "$2" | awk '{ s += $1 } END { print s + 0 }')
    echo "${_med:-nan} $_n $_f"
}
# The direct cost: time judgebox itself spends in cgroup work per run (`run --timings`:
# Manager setup + mkdir + limits, the calls during the run, removal), free of the
# run-to-run noise of whole-run wall times under TCG.
rm -f /tmp/timings
i=0
while [ $i -lt "$PER" ]; do
    judgebox run --timings --rootfs /rootfs -- /bin/true 2>&1 >/dev/null | grep '^judgebox: timings' >>/tmp/timings
    i=$((i + 1))
done
median_of() { # sed expression extracting one number per line of /tmp/timings
    sed -n "$1" /tmp/timings | sort -n | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
DIRECT_MS=$(median_of 's/.*; cgroup \([0-9.]*\) ms.*/\1/p')
SETUP_MS=$(median_of 's/.*(setup \([0-9.]*\),.*/\1/p')
INRUN_MS=$(median_of 's/.*during the run \([0-9.]*\),.*/\1/p')
REMOVAL_MS=$(median_of 's/.*removal \([0-9.]*\)).*/\1/p')
TOTAL_MS=$(median_of 's/.*timings: total \([0-9.]*\) ms.*/\1/p')
info "direct cgroup cost (run --timings, $(wc -l </tmp/timings) runs, medians): ${DIRECT_MS} ms = setup ${SETUP_MS} + during the run ${INRUN_MS} + removal ${REMOVAL_MS}; judgebox's whole run ${TOTAL_MS} ms"
check bench.timings "run --timings printed nothing" [ -s /tmp/timings ]

# shellcheck disable=SC2046 # three words wanted
set -- $(agg /tmp/samples.cgroup /tmp/fails.cgroup)
CG_MS=$1 CG_N=$2 CG_F=$3
# shellcheck disable=SC2046
set -- $(agg /tmp/samples.nocgroup /tmp/fails.nocgroup)
NO_MS=$1 NO_N=$2 NO_F=$3
info "with cgroups:    median ${CG_MS} ms/run over $CG_N runs ($CG_F failed)"
info "--no-cgroup:     median ${NO_MS} ms/run over $NO_N runs ($NO_F failed)"
echo "BENCH cgroup_ms=$CG_MS no_cgroup_ms=$NO_MS added_ms=$(fsub "$CG_MS" "$NO_MS") direct_cgroup_ms=$DIRECT_MS runs=$N"
check bench.cgroup_runs "$CG_F of $CG_N runs with cgroups failed" [ "$CG_F" = 0 ]
check bench.no_cgroup_runs "$NO_F of $NO_N runs with --no-cgroup failed" [ "$NO_F" = 0 ]
summary
