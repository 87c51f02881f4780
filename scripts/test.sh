#!/usr/bin/env bash
# The whole test suite: unit + integration tests on this host (cargo test), then the
# cgroup-v2 scenarios in a VM (scripts/vm-test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test.sh: the tests create namespaces, mounts and cgroups: run as root" >&2; exit 2; }
scripts/install-deps.sh
cargo test --release -- --test-threads=2
scripts/vm-test.sh --binary target/release/judgebox
