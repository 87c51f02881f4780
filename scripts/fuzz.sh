#!/bin/sh
# Runs each cargo-fuzz target of tests/fuzz for SECONDS (default 30), one after another, on
# the stable toolchain (RUSTC_BOOTSTRAP=1: cargo-fuzz needs -Z flags). Crashes are left in
# tests/fuzz/artifacts/TARGET/; keep each as a regression input once fixed.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-30}
[ $# -gt 0 ] && shift
command -v cargo-fuzz >/dev/null 2>&1 || {
    echo "fuzz.sh: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 2
}
targets=${*:-"units test_names compare image_docs seccomp_profile"}
for t in $targets; do
    echo "== $t ($seconds s)"
    RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir tests/fuzz "$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=1024 -max_len=65536
done
