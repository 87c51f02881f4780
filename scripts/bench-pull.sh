#!/usr/bin/env bash
# Pull throughput of `judgebox image pull` against `skopeo copy` from the same local
# registry, measured in the same run, alternating the two (machines are noisy: compare
# the ratio, not absolute times).
#
#   scripts/bench-pull.sh [--runs N] [--layout DIR] [--image NAME:TAG]
#
# Starts Debian's docker-registry on a loopback port, pushes the image from an OCI
# layout (default: judgebox/python3:bookworm from /var/cache/judgebox/oci) with skopeo,
# then times N pulls of each into a fresh directory (judgebox: fresh --root; skopeo:
# fresh oci: dir). Prints medians, MB/s and judgebox's throughput relative to skopeo's.
# Needs: docker-registry, skopeo, curl (apt-get install -y docker-registry skopeo curl).
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=5
LAYOUT=/var/cache/judgebox/oci
IMAGE=judgebox/python3:bookworm
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --layout) LAYOUT=$2; shift 2 ;;
    --image) IMAGE=$2; shift 2 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "bench-pull.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

for tool in docker-registry skopeo curl; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "bench-pull.sh: $tool is missing (apt-get install -y docker-registry skopeo curl)" >&2
    exit 2
  }
done
[ -f "$LAYOUT/index.json" ] || { echo "bench-pull.sh: no OCI layout at $LAYOUT" >&2; exit 2; }

cargo build --release --quiet
JB=${CARGO_TARGET_DIR:-$PWD/target}/$(rustc -vV | sed -n "s/^host: //p")/release/judgebox
WORK=$(mktemp -d /tmp/judgebox-bench-pull.XXXXXX)
REG_PID=""
cleanup() {
  [ -n "$REG_PID" ] && kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

# A free loopback port.
while :; do
  PORT=$((20000 + RANDOM % 20000))
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null || break
done
cat >"$WORK/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$PORT
EOF
docker-registry serve "$WORK/config.yml" >"$WORK/registry.log" 2>&1 &
REG_PID=$!
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && break
  sleep 0.1
done
REF=127.0.0.1:$PORT/$IMAGE
skopeo copy -q --dest-tls-verify=false "oci:$LAYOUT:$IMAGE" "docker://$REF"

now() { date +%s.%N; }
calc() { awk "BEGIN { print $1 }"; }
JB_TIMES=()
SK_TIMES=()
for i in $(seq "$RUNS"); do
  rm -rf "$WORK/root" "$WORK/oci"
  t0=$(now)
  "$JB" image pull -q --root "$WORK/root" "$REF" >/dev/null 2>"$WORK/jb.err" || { cat "$WORK/jb.err" >&2; exit 1; }
  t1=$(now)
  skopeo copy -q --src-tls-verify=false "docker://$REF" "oci:$WORK/oci:bench"
  t2=$(now)
  JB_TIMES+=("$(calc "$t1 - $t0")")
  SK_TIMES+=("$(calc "$t2 - $t1")")
  printf 'run %d: judgebox %.3f s, skopeo %.3f s\n' "$i" "${JB_TIMES[-1]}" "${SK_TIMES[-1]}"
done

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
BYTES=$(du -sb "$WORK/root/blobs/sha256" | cut -f1)
JB_MED=$(median "${JB_TIMES[@]}")
SK_MED=$(median "${SK_TIMES[@]}")
MB=$(calc "$BYTES / 1000000")
printf '\nimage %s: %.1f MB (manifest, config, layers), %d runs each\n' "$IMAGE" "$MB" "$RUNS"
printf '%-10s median %.3f s  %7.1f MB/s\n' judgebox "$JB_MED" "$(calc "$MB / $JB_MED")"
printf '%-10s median %.3f s  %7.1f MB/s\n' skopeo "$SK_MED" "$(calc "$MB / $SK_MED")"
printf 'judgebox throughput = %.2f x skopeo (target >= 0.8)\n' "$(calc "$SK_MED / $JB_MED")"
