#!/usr/bin/env bash
# End to end on a fresh Debian/Ubuntu machine: installs prerequisites, builds judgebox,
# builds a small rootfs (busybox-static + a C program compiled statically), and runs a
# submission in the sandbox with time, output and isolation limits, printing the JSON result.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "quickstart: judgebox creates namespaces and mounts: run as root" >&2; exit 2; }
scripts/install-deps.sh
cargo build --release --quiet
JB=$PWD/target/release/judgebox

ROOT=${JUDGEBOX_QUICKSTART_ROOT:-$PWD/.cache/quickstart-rootfs}
rm -rf "$ROOT" && mkdir -p "$ROOT/bin"
cp /bin/busybox "$ROOT/bin/busybox"
for a in $("$ROOT/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$ROOT/bin/$a"; done

WORK=$(mktemp -d /tmp/judgebox-quickstart.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
cat > "$WORK/sum.c" <<'C'
#include <stdio.h>
int main(void) { long a, b; if (scanf("%ld %ld", &a, &b) != 2) return 1; printf("%ld\n", a + b); return 0; }
C
gcc -static -O2 -o "$WORK/sum" "$WORK/sum.c"
echo "2 40" > "$WORK/input.txt"

echo "== a submission reading stdin, limits on (prints one JSON result):"
"$JB" run --rootfs "$ROOT" --file "$WORK/sum:sum" --stdin "$WORK/input.txt" \
  --time 1 --wall-time 3 --output-limit 1M --json -- ./sum | tee "$WORK/result.json"
grep -q '"status":"ok"' "$WORK/result.json" && grep -q '"stdout":"42\\n"' "$WORK/result.json"

echo "== an infinite loop under --time 1:"
"$JB" run --rootfs "$ROOT" --time 1 --json -- /bin/sh -c 'while :; do :; done' | tee "$WORK/tle.json" || true
grep -q '"status":"time_limit"' "$WORK/tle.json"

echo "== what the program sees (human output):"
"$JB" run --rootfs "$ROOT" -- /bin/sh -c 'echo "uid=$(id -u) host=$(hostname) pid=$$"; touch /x 2>&1 || true'
echo "quickstart: OK"
