#!/bin/sh
# Runs each cargo-fuzz target of tests/fuzz for SECONDS (default 30), one after another, on
# the stable toolchain (RUSTC_BOOTSTRAP=1: cargo-fuzz needs -Z flags). Each run starts by
# replaying tests/fuzz/regressions/TARGET/ (committed seeds and every crash input found so
# far) besides the local corpus. Crashes are left in tests/fuzz/artifacts/TARGET/; once
# fixed, copy each into tests/fuzz/regressions/TARGET/.
#   scripts/fuzz.sh [SECONDS] [TARGET...]
set -eu
cd "$(dirname "$0")/.."
seconds=${1:-30}
[ $# -gt 0 ] && shift
command -v cargo-fuzz >/dev/null 2>&1 || {
    echo "fuzz.sh: cargo-fuzz is missing: cargo install cargo-fuzz --locked" >&2
    exit 2
}
targets=${*:-"units test_names compare image_docs seccomp_profile seccomp_diff unpack server_request isolate_args"}
for t in $targets; do
    echo "== $t ($seconds s)"
    mkdir -p "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t"
    RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir tests/fuzz "$t" \
        "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=1024 -max_len=65536
done
