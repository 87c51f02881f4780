#!/usr/bin/env bash
# The whole test suite: unit + integration tests on this host (cargo test), then the
# cgroup-v2 scenarios in a VM (scripts/vm-test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test.sh: the tests create namespaces, mounts and cgroups: run as root" >&2; exit 2; }
scripts/install-deps.sh
cargo test --release -- --test-threads=2
# The cgroup-v2 VM scenarios join once judgebox has its cgroup layer (--memory/--pids/doctor).
if target/release/judgebox run --help | grep -q -- '--memory'; then
  scripts/vm-test.sh --binary target/release/judgebox
fi
