#!/usr/bin/env bash
# The main job, end to end on a fresh Debian/Ubuntu machine (as root): installs what it
# needs, builds judgebox, builds the C++ and Python language images from Debian's packages
# (a few minutes the first time; cached after), then judges the example problem in
# tests/examples/aplusb: a correct C++ solution (accepted) and a buggy Python one
# (wrong answer), printing the verdict tables and one JSON result.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "quickstart: judgebox creates namespaces, mounts and cgroups: run as root" >&2; exit 2; }
scripts/install-deps.sh
cargo build --release --quiet
JB=$PWD/target/$(rustc -vV | sed -n "s/^host: //p")/release/judgebox
export JUDGEBOX=$JB
scripts/build-images.sh gcc python3

EX=tests/examples/aplusb
echo
echo "== judgebox lang ls"
"$JB" lang ls
echo
echo "== a correct C++ solution over ${EX}/tests:"
"$JB" judge --lang cpp "$EX/solution.cpp" --tests "$EX/tests"
echo
echo "== a buggy Python solution (exit code 1: not accepted):"
if "$JB" judge --lang python3 "$EX/wrong.py" --tests "$EX/tests"; then
  echo "quickstart: expected a wrong answer" >&2; exit 1
fi
echo
echo "== the same C++ judging as one JSON object (Judge0 status ids included):"
"$JB" judge --lang cpp "$EX/solution.cpp" --tests "$EX/tests" --json > /tmp/judgebox-quickstart.json
jq -c '{verdict, status, passed, total, max_cpu_time, max_memory}' /tmp/judgebox-quickstart.json
jq -e '.verdict == "accepted" and .passed == 8' /tmp/judgebox-quickstart.json >/dev/null
rm -f /tmp/judgebox-quickstart.json
echo "quickstart: OK"
