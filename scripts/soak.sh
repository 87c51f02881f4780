#!/usr/bin/env bash
# Soak test (issue 15), not a timed test: RUNS runs (default 10000) through `judgebox judge`
# at --parallel 2, a mix of normal, wrong-answer, TLE, MLE, fork-bomb, output-flood and
# crashing programs (scripts/soak/modes.c, compiled once per judge). Every verdict must be
# the expected one (a fork bomb may end at its time or its memory limit: each process has
# kernel memory charged to the run). Afterwards it prints what is left behind: processes, host mounts,
# cgroups (every v1 hierarchy and /sys/fs/cgroup/unified, under judgebox's parents),
# leased uids, judge work dirs, and the growth of a judge's open fds (the floor of its last
# samples over the ceiling of those after its 100th run) and RSS (within 10%) between its
# 100th run and its end. Exit status 1 if anything is left or off.
# Run as root, from the repo, with the release binary built:
#   scripts/soak.sh [RUNS] [TESTS_PER_JUDGE]      e.g. scripts/soak.sh 300 (a quick smoke)
# Env: JUDGEBOX (binary), SOAK_UID_RANGE (its own uid range, default 2000010000-2000010063).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/leftovers.sh
[ "$(id -u)" = 0 ] || { echo "soak.sh: run as root" >&2; exit 2; }
runs=${1:-10000}
per_judge=${2:-300}
[ "$per_judge" -gt "$runs" ] && per_judge=$runs
BIN=${JUDGEBOX:-$PWD/target/$(rustc -vV | sed -n 's/^host: //p')/release/judgebox}
BIN=$(readlink -f "$BIN")
uid_range=${SOAK_UID_RANGE:-2000010000-2000010063}
uid_first=${uid_range%-*}
uid_last=${uid_range#*-}
work=$(mktemp -d /tmp/judgebox-soak.XXXXXX)
trap 'rm -rf "$work"' EXIT
modes=(normal wrong tle mle fork flood crash normal)
declare -A expect=([normal]=accepted [wrong]=wrong_answer [tle]=time_limit [mle]=memory_limit
    [fork]='time_limit|memory_limit' [flood]=output_limit [crash]=runtime_error)

# One tests dir: test i does modes[i % 8].
mkdir "$work/tests"
for ((i = 0; i < per_judge; i++)); do
    m=${modes[i % ${#modes[@]}]}
    printf '%s %d\n' "$m" "$i" >"$work/tests/$i.in"
    printf '%d\n' $((i * 2)) >"$work/tests/$i.out"
    echo "$i ${expect[$m]}" >>"$work/expected"
done

judge_mountinfo() { grep -c judgebox /proc/self/mountinfo || true; }
mounts_before=$(judge_mountinfo)

# Samples a judge's fd count and RSS (kB) every 0.1 s with its progress (tests finished,
# from the last `--progress` line in its stderr, $3), into $2; stops when the judge ends.
sample() {
    local pid=$1 out=$2 progress=$3 seq fds rss
    while [ -d "/proc/$pid" ]; do
        seq=$(tail -n 1 "$progress" 2>/dev/null | sed -n 's|^judgebox: test \([0-9]*\)/.*|\1|p' || true)
        # ls fails when an fd closes while it reads the dir: no errexit for that.
        fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l || true)
        rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        [ -n "$seq" ] && [ -n "$rss" ] && echo "$seq $fds $rss" >>"$out"
        sleep 0.1
    done
}

done_runs=0 bad_verdicts=0 judges=0 worst_rss_pct=0 fd_growth=0
: >"$work/pids"
while [ "$done_runs" -lt "$runs" ]; do
    n=$((runs - done_runs < per_judge ? runs - done_runs : per_judge))
    rm -rf "$work/t" && mkdir "$work/t"
    for ((i = 0; i < n; i++)); do cp "$work/tests/$i.in" "$work/tests/$i.out" "$work/t/"; done
    "$BIN" judge --lang c scripts/soak/modes.c --tests "$work/t" --parallel 2 --json \
        --uid-range "$uid_range" --time 0.3 --wall-time 3 --memory 64M --output-limit 1M \
        --pids 32 --progress >"$work/result.json" 2>"$work/stderr" &
    pid=$!
    echo "$pid" >>"$work/pids"
    : >"$work/samples"
    sample "$pid" "$work/samples" "$work/stderr" &
    sampler=$!
    wait "$pid" || true
    wait "$sampler" || true
    judges=$((judges + 1))
    # Verdicts: every test's must be the one its mode asks for.
    got=$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
for t in r.get("tests", []):
    print(t["name"], t["verdict"])
' "$work/result.json" 2>/dev/null || true)
    wrong=$(join <(sort "$work/expected") <(echo "$got" | sort) | awk '$3 !~ "^(" $2 ")$"' | wc -l)
    missing=$((n - $(echo "$got" | grep -c . || true)))
    if [ $((wrong + missing)) -gt 0 ]; then
        echo "judge $judges: $wrong unexpected verdicts, $missing tests missing" >&2
        join <(sort "$work/expected") <(echo "$got" | sort) | awk '$3 !~ "^(" $2 ")$"' | head -5 >&2
        grep -v "^judgebox: test [0-9]*/" "$work/stderr" | head -c 2000 >&2
    fi
    bad_verdicts=$((bad_verdicts + wrong + missing))
    # RSS and fds: the first sample at run 100 or later against the last one.
    if [ "$n" -ge 200 ] && [ -n "$(awk '$1 >= 100 {print; exit}' "$work/samples")" ]; then
        rss100=$(awk '$1 >= 100 {print $3; exit}' "$work/samples")
        # Runs in flight hold a few fds each, so single samples jump around: a leak is the
        # floor of the last 20 samples rising above the ceiling of the 20 after run 100.
        fd_end=$(tail -20 "$work/samples" | awk 'NR == 1 || $2 < m {m = $2} END {print m}')
        fd100=$(awk '$1 >= 100' "$work/samples" | head -20 | awk '$2 > m {m = $2} END {print m}')
        rss_end=$(tail -1 "$work/samples" | awk '{print $3}')
        pct=$(( (rss_end - rss100) * 100 / rss100 ))
        [ "$pct" -gt "$worst_rss_pct" ] && worst_rss_pct=$pct
        [ $((fd_end - fd100)) -gt "$fd_growth" ] && fd_growth=$((fd_end - fd100))
        echo "judge $judges: $n tests, rss ${rss100} kB at run 100 -> ${rss_end} kB at the end (${pct}%), fds at most $fd100 after run 100, at least $fd_end at the end"
    fi
    done_runs=$((done_runs + n))
done

# What is left behind.
pids=$(paste -sd'|' "$work/pids")
procs=$(count_processes "$BIN" "$uid_first" "$uid_last")
mounts=$(( $(judge_mountinfo) - mounts_before ))
[ "$mounts" -lt 0 ] && mounts=0
cgroups=$(count_cgroups "$pids")
leases=$(count_leases "$uid_first" "$uid_last")
staging=$(count_work_dirs "$pids")
rss_bad=$(( worst_rss_pct > 10 ? 1 : 0 ))

echo "soak: $done_runs runs in $judges judges (--parallel 2)"
echo "unexpected verdicts  $bad_verdicts"
echo "processes            $procs"
echo "mounts               $mounts"
echo "cgroups              $cgroups"
echo "leased uids          $leases"
echo "staging dirs         $staging"
echo "fd growth            $fd_growth (a judge's fd floor at its end over its ceiling after run 100)"
echo "rss growth (%)       $worst_rss_pct (worst judge, run 100 -> end; limit 10)"
[ $((bad_verdicts + procs + mounts + cgroups + leases + staging + fd_growth + rss_bad)) -eq 0 ]
