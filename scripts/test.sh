#!/usr/bin/env bash
# The whole test suite (as root): builds judgebox and the language images (cached after the
# first run), runs clippy (warnings are errors), then unit + integration tests on this host
# (cargo test, every language judged for real; the server suite on SQLite and on
# PostgreSQL), then every fuzz target for 30 s (scripts/fuzz.sh), then the cgroup-v2
# scenarios in a VM
# (scripts/vm-test.sh), then the host kinds users have (issue 16): judgebox in podman
# containers (scripts/container-test.sh) and the .deb on a Debian 13 systemd VM
# (scripts/systemd-vm-test.sh; its disk image is cached in /var/cache/judgebox-vm).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "test.sh: the tests create namespaces, mounts and cgroups: run as root" >&2; exit 2; }
scripts/install-deps.sh
cargo build --release --quiet
# Lints first (cheap next to the tests): every unsafe block documented, no warnings.
rustup component add clippy >/dev/null 2>&1 || true
cargo clippy --quiet --all-targets -- -D warnings
JUDGEBOX=$PWD/target/$(rustc -vV | sed -n 's/^host: //p')/release/judgebox scripts/build-images.sh
JUDGEBOX_REQUIRE_IMAGES=1 cargo test --release -- --test-threads=2
# The server suite again on the PostgreSQL backend (a throwaway server it starts itself);
# tests/cluster.rs, in the run above, covers API and worker processes on separate hosts.
JUDGEBOX_TEST_BACKEND=postgres JUDGEBOX_REQUIRE_IMAGES=1 cargo test --release --test server -- --test-threads=2
scripts/crosscheck-umoci.sh
scripts/fuzz.sh 30
BIN=target/$(rustc -vV | sed -n 's/^host: //p')/release/judgebox
scripts/vm-test.sh --binary "$BIN"
scripts/container-test.sh --binary "$BIN"
scripts/systemd-vm-test.sh
