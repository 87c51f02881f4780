#!/usr/bin/env bash
# Benchmarks judgebox's layer unpacker against GNU tar and umoci on one real image, in one
# run: judgebox (examples/unpack.rs -> unpack_layers), `tar -xzf` of the same layer blobs
# applied in order into a fresh directory, and `umoci unpack`; all into fresh directories
# on the same filesystem, page cache warm, `sync` before every run. Prints medians, the
# ratios the issue sets (judgebox <= 1.0x tar, <= 0.6x umoci) and judgebox's peak RSS
# (<= 64 MiB).
#
#   scripts/bench-unpack.sh [LAYOUT_DIR [TAG]]
#   RUNS=7 BENCH_DIR=/var/tmp SYNC=1 scripts/bench-unpack.sh
#
# RUNS: runs per tool (default 5). BENCH_DIR: where the trees go (default /var/tmp).
# SYNC=1 also times a final `sync` inside every run (data on disk, not just in the cache).
# Uses hyperfine when installed (Debian: apt-get install -y hyperfine), else a loop.
set -euo pipefail

LAYOUT=${1:-/var/cache/judgebox/oci}
TAG=${2:-judgebox/python3:bookworm}
RUNS=${RUNS:-5}
BENCH_DIR=${BENCH_DIR:-/var/tmp}
SYNC=${SYNC:-0}
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)

if [[ ! -f $LAYOUT/index.json ]] || ! grep -q "\"$TAG\"" "$LAYOUT/index.json"; then
    echo "SKIP: no image $TAG in an OCI layout at $LAYOUT"
    exit 0
fi
for tool in umoci tar gzip /usr/bin/time; do
    command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y umoci time)"; exit 1; }
done

(cd "$ROOT_DIR" && cargo build --quiet --release --example unpack)
UNPACK=${CARGO_TARGET_DIR:-$ROOT_DIR/target}/$(rustc -vV | sed -n "s/^host: //p")/release/examples/unpack

mapfile -t BLOBS < <("$UNPACK" "$LAYOUT" "$TAG" --list)
WORK=$(mktemp -d "$BENCH_DIR/judgebox-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

compressed=0
for b in "${BLOBS[@]}"; do compressed=$((compressed + $(stat -c %s "$b"))); done
echo "image $TAG: ${#BLOBS[@]} layers, $((compressed >> 20)) MiB compressed (the tar baseline needs gzip layers)"
echo "filesystem of $BENCH_DIR: $(findmnt -n -o FSTYPE,SOURCE,OPTIONS -T "$WORK" | head -1); $(nproc) CPUs; $RUNS runs each"

tail=""
[[ $SYNC == 1 ]] && tail=" && sync"
TAR_CMD="mkdir $WORK/tar"
for b in "${BLOBS[@]}"; do TAR_CMD+=" && tar -xzf $b -C $WORK/tar"; done
declare -A CMD=(
    [judgebox]="$UNPACK $LAYOUT $TAG $WORK/judgebox 2>/dev/null$tail"
    [tar]="$TAR_CMD$tail"
    [umoci]="umoci unpack --image $LAYOUT:$TAG $WORK/umoci >/dev/null 2>&1$tail"
)
NAMES=(judgebox tar umoci)
declare -A MEDIAN

if command -v hyperfine >/dev/null; then
    args=()
    for n in "${NAMES[@]}"; do
        args+=(--prepare "rm -rf $WORK/$n; sync" -n "$n" "${CMD[$n]}")
    done
    hyperfine --warmup 1 --runs "$RUNS" --export-csv "$WORK/times.csv" "${args[@]}" >&2
    # command,mean,stddev,median,user,system,min,max
    while IFS=, read -r name _ _ median _; do
        MEDIAN[$name]=$median
    done < <(tail -n +2 "$WORK/times.csv")
else
    for n in "${NAMES[@]}"; do
        times=()
        for ((i = 0; i < RUNS; i++)); do
            rm -rf "${WORK:?}/$n"; sync
            start=$(date +%s.%N)
            bash -c "${CMD[$n]}"
            times+=("$(echo "$(date +%s.%N) - $start" | bc -l)")
        done
        MEDIAN[$n]=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')
    done
fi

rm -rf "${WORK:?}/judgebox"; sync
/usr/bin/time -v "$UNPACK" "$LAYOUT" "$TAG" "$WORK/judgebox" >/dev/null 2>"$WORK/time.txt"
rss_kib=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$WORK/time.txt")
grep '^unpacked' "$WORK/time.txt" || true

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
verdict() { awk -v v="$1" -v max="$2" 'BEGIN {print (v <= max) ? "ok" : "OVER"}'; }
r_tar=$(ratio "${MEDIAN[judgebox]}" "${MEDIAN[tar]}")
r_umoci=$(ratio "${MEDIAN[judgebox]}" "${MEDIAN[umoci]}")
rss_mib=$(awk -v k="$rss_kib" 'BEGIN {printf "%.1f", k / 1024}')

echo
printf 'median judgebox  %8.3f s\n' "${MEDIAN[judgebox]}"
printf 'median tar -xzf  %8.3f s\n' "${MEDIAN[tar]}"
printf 'median umoci     %8.3f s\n' "${MEDIAN[umoci]}"
echo "judgebox / tar    = $r_tar   (target <= 1.0: $(verdict "$r_tar" 1.0))"
echo "judgebox / umoci  = $r_umoci   (target <= 0.6: $(verdict "$r_umoci" 0.6))"
echo "judgebox peak RSS = $rss_mib MiB   (target <= 64: $(verdict "$rss_mib" 64))"
