#!/bin/bash
# Judge cases inside the systemd VM, run from a login session, a service without
# Delegate= and the shipped unit. Prints "PASS TAG.name" / "FAIL TAG.name: why".
# usage: cases.sh TAG full|short
TAG=$1 SET=${2:-full}
P=/payload/programs
JB_TIMEOUT=240
# Submissions are judged with warm sandboxes (judge's default): their init keeps the host's
# cgroup namespace, as systemd's nsdelegate mount requires, and places each test's program
# in its run cgroup. VMT_REUSE=0 judges with a fresh sandbox per test instead.
REUSE=
[ "${VMT_REUSE:-1}" = 0 ] && REUSE=--no-reuse

# judge NAME WANT LANG FILE [judge options...]: one submission, verdict WANT, every
# limit (memory, pids, cpu time) enforced by cgroup2.
judge() {
  local name=$TAG.$1 want=$2 lang=$3 file=$4 out rc verdict enf
  shift 4
  out=$(timeout -s KILL $JB_TIMEOUT judgebox judge --json $REUSE --lang "$lang" "$file" "$@" 2>/tmp/jb.err)
  rc=$?
  verdict=$(jq -r '.verdict // empty' <<<"$out" 2>/dev/null)
  enf=$(jq -r '[.tests[]?.enforcement | .memory, .pids, .cpu_time] | unique | join(",")' <<<"$out" 2>/dev/null)
  if [ -z "$verdict" ]; then
    echo "FAIL $name: no JSON verdict (exit $rc)"
    sed 's/^/    | /' /tmp/jb.err | head -n 10
  elif [ "$verdict" != "$want" ]; then
    echo "FAIL $name: verdict $verdict, want $want ($(jq -c '[.compile.message, .tests[0].message, .tests[0].memory_peak, .tests[0].stderr]' <<<"$out"))"
  elif [ "$enf" != cgroup2 ]; then
    echo "FAIL $name: enforcement $enf, want cgroup2 for memory, pids and cpu time"
  else
    echo "PASS $name ($verdict, $(jq -r '.max_memory' <<<"$out") B peak)"
  fi
  sed -n 's/^judgebox: /    | judgebox: /p' /tmp/jb.err | head -n 3
}

# Nothing of judgebox may be left in the cgroup tree (scopes are collected a bit later).
no_leftovers() {
  local left i
  for i in $(seq 50); do
    left=$(find /sys/fs/cgroup -type d \( -name 'judgebox-*.scope' -o -name 'run-[0-9]*-[0-9]*-[0-9]*' \) 2>/dev/null)
    [ -z "$left" ] && break
    sleep 0.2
  done
  if [ -z "$left" ]; then echo "PASS $TAG.no_cgroup_left"; else echo "FAIL $TAG.no_cgroup_left: $left"; fi
}

echo "INFO $TAG: own cgroup $(cut -d: -f3 /proc/self/cgroup)"
judge cpp_accepted accepted cpp $P/ok.cpp --tests /payload/aplusb/tests --parallel 2
judge cpp_mle memory_limit cpp $P/mle.cpp --memory 64M
judge py_bomb runtime_error python3 $P/bomb.py --pids 16 --wall-time 5
if [ "$SET" = full ]; then
  judge cpp_bomb time_limit cpp $P/bomb.cpp --pids 16 --wall-time 3
  if [ -n "$(pgrep -x main)" ]; then echo "FAIL $TAG.cpp_bomb_gone: $(pgrep -cx main) processes left"; else echo "PASS $TAG.cpp_bomb_gone"; fi
  judge py_accepted accepted python3 $P/ok.py --tests /payload/aplusb/tests --parallel 2
  judge py_mle memory_limit python3 $P/mle.py --memory 64M
fi
no_leftovers
