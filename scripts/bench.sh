#!/usr/bin/env bash
# Per-run latency of judgebox against its peers, all measured in the same run (machines are
# noisy: compare the printed ratios, not absolute times).
#
#   scripts/bench.sh [--runs N] [--rootfs DIR] [--python-rootfs DIR] [--only SECTION]
#
# SECTION: run (per-run latency vs peers), cgroup (added cost of cgroup limits),
# seccomp, judge (throughput vs a bwrap loop), isolate (the isolate front end against
# judgebox run), serve (the HTTP API vs judge vs the host, scripts/bench-serve.py), cluster
# (serve on PostgreSQL with 1 and 2 worker processes vs SQLite, scripts/bench-cluster.py).
# Default: all of them.
#
# Compares, for /bin/true (and `python3 -c pass` in the python3 image, or --python-rootfs):
#   host fork/exec, chroot into the rootfs (the floor: the same binary and libraries, no
#   sandbox), `unshare chroot` with and without pid+mount+ipc+uts namespaces (what the
#   namespaces alone cost, the execs being the same), unshare (pid+mount+net+ipc+uts,
#   --mount-proc), bwrap --unshare-all with the rootfs as /, and judgebox run. Prints
#   medians (ms) and judgebox/peer ratios.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=60
ROOTFS=""
PYROOT=""
ONLY=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --rootfs) ROOTFS=$2; shift 2 ;;
    --python-rootfs) PYROOT=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

need() { command -v "$1" >/dev/null 2>&1; }
missing=()
for tool in hyperfine bwrap jq unshare; do need "$tool" || missing+=("$tool"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench.sh: installing ${missing[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine bubblewrap jq util-linux busybox-static >/dev/null
fi

cargo build --release --quiet
JB=$PWD/target/$(rustc -vV | sed -n "s/^host: //p")/release/judgebox
WORK=$(mktemp -d /tmp/judgebox-bench.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# Unpin the pool's idle network namespaces (earlier parallel runs may have left up to 64):
# each pin is a mount every peer's new mount namespace copies too, so leftovers would slow
# the peers with judgebox's own state. judgebox re-pins what its runs use.
"$JB" cleanup >/dev/null

if [ -z "$ROOTFS" ]; then
  # A minimal busybox rootfs, like the test suite's.
  ROOTFS=$WORK/rootfs
  mkdir -p "$ROOTFS/bin" "$ROOTFS/proc" "$ROOTFS/dev" "$ROOTFS/tmp" "$ROOTFS/box"
  cp /bin/busybox "$ROOTFS/bin/busybox"
  for a in sh true; do ln -s busybox "$ROOTFS/bin/$a"; done
fi

median_ms() { # hyperfine JSON -> median in ms
  jq -r '.results[0].median * 1000' "$1"
}

bench() { # name, command...
  local name=$1; shift
  hyperfine --style none --warmup 5 --runs "$RUNS" -N --export-json "$WORK/$name.json" "$*" >/dev/null 2>&1 \
    || hyperfine --style none --warmup 5 --runs "$RUNS" --export-json "$WORK/$name.json" "$*" >/dev/null
  median_ms "$WORK/$name.json"
}

# The tools take turns: ROUNDS rounds of RUNS/ROUNDS runs each, tool after tool, and each
# tool's median is over all its runs. A machine whose speed drifts during the section
# (this one does, by 30% within minutes) then slows or speeds every tool alike, where
# one block per tool would bill the drift to whichever ran in the slow minutes. Each
# block starts on a settled machine, as the judging section's measurements do: the kernel
# finishes some of a tool's work after it exits (bwrap's and unshare's network
# namespaces are torn down by a kernel worker), which must not be billed to the next tool.
ROUNDS=6

round_robin() { # name=command... ; prints "name median_ms" per tool
  local per=$(( (RUNS + ROUNDS - 1) / ROUNDS )) r spec name
  for r in $(seq "$ROUNDS"); do
    for spec in "$@"; do
      name=${spec%%=*}
      sleep 1
      hyperfine --style none --warmup 3 --runs "$per" -N --export-json "$WORK/$name.$r.json" "${spec#*=}" \
        >/dev/null 2>&1 \
        || hyperfine --style none --warmup 3 --runs "$per" --export-json "$WORK/$name.$r.json" "${spec#*=}" >/dev/null
    done
  done
  for spec in "$@"; do
    name=${spec%%=*}
    jq -s -r --arg n "$name" '[.[].results[0].times[]] | sort
      | (if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end)
      | "\($n) \(. * 1000)"' "$WORK/$name".*.json
  done
}

report() { # label, prog, rootfs, target line
  local label=$1 prog=$2 root=$3 target=$4
  local host chr unsh bw jb plain nsonly medians
  medians=$(round_robin "host=$prog" "chroot=chroot $root $prog" \
    "plain=unshare chroot $root $prog" "nsonly=unshare --pid --fork --mount --ipc --uts chroot $root $prog" \
    "unshare=unshare --pid --fork --mount --net --ipc --uts --mount-proc $prog" \
    "bwrap=bwrap --unshare-all --die-with-parent --ro-bind $root / --proc /proc --dev /dev $prog" \
    "judgebox=$JB run --rootfs $root -- $prog")
  rm -f "$WORK"/host.*.json "$WORK"/chroot.*.json "$WORK"/plain.*.json "$WORK"/nsonly.*.json \
    "$WORK"/unshare.*.json "$WORK"/bwrap.*.json "$WORK"/judgebox.*.json
  pick() { awk -v n="$1" '$1 == n { print $2 }' <<<"$medians"; }
  host=$(pick host) chr=$(pick chroot) unsh=$(pick unshare) bw=$(pick bwrap) jb=$(pick judgebox)
  plain=$(pick plain) nsonly=$(pick nsonly)
  printf '\n%s  (median of %d runs each, the tools taking turns in %d rounds, ms)\n' "$label" \
    "$(( (RUNS + ROUNDS - 1) / ROUNDS * ROUNDS ))" "$ROUNDS"
  printf '  %-30s %8.2f\n' "host fork/exec" "$host" "chroot into the rootfs" "$chr" \
    "unshare chroot (no namespace)" "$plain" "unshare -pmiu chroot" "$nsonly" \
    "unshare -pmniu --mount-proc" "$unsh" "bwrap --unshare-all" "$bw" "judgebox run" "$jb"
  awk -v j="$jb" -v b="$bw" -v u="$unsh" -v h="$host" -v c="$chr" 'BEGIN {
    printf "  judgebox/bwrap   = %.2fx\n  judgebox/chroot  = %.2fx\n", j/b, j/c;
    printf "  judgebox/unshare = %.2fx\n  judgebox/host    = %.2fx\n", j/u, j/h }'
  # The namespaces alone, with the same execs: what any sandbox with its own pid, mount,
  # IPC and UTS namespaces pays over chroot before it mounts, limits or filters anything.
  awk -v n="$nsonly" -v p="$plain" 'BEGIN { printf "  namespaces alone (unshare -pmiu chroot / unshare chroot) = %.2fx\n", n/p }'
  echo "  $target"
}

want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }
case "$ONLY" in ""|run|cgroup|seccomp|judge|isolate|serve|cluster) ;; *) echo "bench.sh: --only run|cgroup|seccomp|judge|isolate|serve|cluster" >&2; exit 2 ;; esac

echo "judgebox bench on $(uname -r), $(nproc) CPUs; rootfs $ROOTFS"
if want run; then
report "/bin/true" /bin/true "$ROOTFS" "target: judgebox/bwrap <= 0.8x"
if [ -z "$PYROOT" ]; then
  # The python3 language image from the store, when scripts/build-images.sh made it.
  PYROOT=$("$JB" image inspect judgebox/python3:bookworm --json 2>/dev/null | jq -r '.rootfs // empty' || true)
fi
if [ -n "$PYROOT" ]; then
  report "python3 -c pass" "/usr/bin/python3 -c pass" "$PYROOT" "target: judgebox/chroot <= 1.1x"
else
  echo
  echo "(python3 -c pass skipped: no judgebox/python3:bookworm in the store; run scripts/build-images.sh python3 or pass --python-rootfs DIR)"
fi
fi

# seccomp: the cost of the filter per run (the BPF is compiled once per process and
# cached; installing it is one seccomp(2) call), then compile and install times measured
# in-process against the stacked seccompiler filters a naive design would install.
# cgroups: what per-run limits and accounting cost. Two figures: the direct cost, i.e. the
# time judgebox itself spends in cgroup work per run (`run --timings`: manager setup, mkdir
# and limits, the calls made during the run, removal), and the difference of whole-run
# medians against --no-cgroup (the same cost plus the machine's noise). Target: <= 1 ms
# on hybrid/v1, <= 0.5 ms on v2 (v2 is measured in the VM by scripts/vm-test.sh --bench).
if want cgroup; then
echo
echo "cgroup per run (judgebox run /bin/true, $RUNS runs, ms; mode $("$JB" doctor --json 2>/dev/null | jq -r '.cgroup.mode // "unknown"'))"
: >"$WORK/timings"
for _ in $(seq "$RUNS"); do
  "$JB" run --timings --seccomp none --rootfs "$ROOTFS" -- /bin/true 2>&1 >/dev/null \
    | grep '^judgebox: timings' >>"$WORK/timings" || true
done
tmedian() { # sed expression -> median of the numbers it extracts from the timings lines
  sed -n "$1" "$WORK/timings" | sort -g | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "nan"; exit }
    printf "%.3f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
direct=$(tmedian 's/.*; cgroup \([0-9.]*\) ms.*/\1/p')
printf '  direct cost (median of %d)   %8.3f  = setup %s + during the run %s + removal %s\n' \
  "$(wc -l <"$WORK/timings")" "$direct" "$(tmedian 's/.*(setup \([0-9.]*\),.*/\1/p')" \
  "$(tmedian 's/.*during the run \([0-9.]*\),.*/\1/p')" "$(tmedian 's/.*removal \([0-9.]*\)).*/\1/p')"
cg_on=$(bench cg-on "$JB" run --seccomp none --rootfs "$ROOTFS" -- /bin/true 2>/dev/null)
cg_off=$(bench cg-off "$JB" run --seccomp none --no-cgroup --rootfs "$ROOTFS" -- /bin/true 2>/dev/null)
printf '  %-28s %8.2f\n' "whole run, cgroup limits" "$cg_on" "whole run, --no-cgroup" "$cg_off"
awk -v d="$direct" -v a="$cg_on" -v b="$cg_off" 'BEGIN {
  printf "  added by cgroups: direct %.3f ms (target <= 1 ms on hybrid/v1); whole-run difference %+.3f ms (noise included)\n", d, a-b }'
fi

if want seccomp; then
echo
echo "seccomp per run (judgebox run /bin/true, median of $RUNS runs, ms)"
sc_none=$(bench sc-none "$JB" run --seccomp none --rootfs "$ROOTFS" -- /bin/true 2>/dev/null)
sc_def=$(bench sc-default "$JB" run --seccomp default --rootfs "$ROOTFS" -- /bin/true)
sc_strict=$(bench sc-strict "$JB" run --seccomp strict --rootfs "$ROOTFS" -- /bin/true)
printf '  %-28s %8.2f\n' "--seccomp none" "$sc_none" "--seccomp default" "$sc_def" "--seccomp strict" "$sc_strict"
awk -v n="$sc_none" -v d="$sc_def" -v s="$sc_strict" 'BEGIN {
  printf "  default - none = %+.3f ms, strict - none = %+.3f ms (whole runs; noise included)\n", d-n, s-n }'
echo "seccomp compile (once per process) and install (per run), in-process:"
cargo test --release --quiet --lib seccomp::tests::perf -- --nocapture 2>&1 \
  | grep -E "^(profile|default|strict|docker)" | sed 's/^/  /'
fi

# Judging throughput: A+B over 200 tiny tests at --parallel 2 (compile excluded), C++ and
# Python, in the language images. The peers run the same program over the same tests with
# scripts/runloop.c: one fork and exec per test, output compared in process, no shell or
# cmp (a peer must not pay what judgebox does not). Peers: the unsandboxed floor (the
# C++ binary run directly on the host, which is the same Debian release; Python's own
# interpreter chrooted into its image, as the host's python3 may load far more), bwrap called
# directly with the image as /, and podman (runc, cgroupfs manager, one container per
# test, over fewer tests: ~0.15 s a container). judgebox judge runs with its warm
# sandboxes (the default) and with --no-reuse (a fresh sandbox per test); it enforces
# cgroup limits and seccomp per test, the peers enforce nothing.
if want judge; then
  J=$WORK/judge; mkdir -p "$J/tests"
  for i in $(seq 1 200); do echo "$i $((i * 3))" > "$J/tests/$i.in"; echo $((i * 4)) > "$J/tests/$i.out"; done
  gcc -O2 -pthread -o "$WORK/runloop" scripts/runloop.c
  loop_rate() { # N [-r ROOT --] CMD...
    local n=$1; shift
    "$WORK/runloop" -p 2 -d "$J/tests" -n "$n" "$@"
  }
  judge_rate() { # lang source [judge args]
    "$JB" judge --lang "$1" "$2" --tests "$J/tests" --parallel 2 --json "${@:3}" \
      | jq -r 'if .verdict != "accepted" then error("judge: " + .verdict) else
               (.tests | length) / (.elapsed - (.compile.wall_time // 0)) end'
  }
  median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
  settle() { sleep 1; }
  judge_section() { # label lang source root image-program host-program...
    local label=$1 lang=$2 src=$3 root=$4 inbox=$5; shift 5
    local fl=() bw=() jw=() jc=() pm
    # Each measurement starts on a settled machine: the kernel finishes some of a tool's
    # work after it exits (network namespaces, cgroups, RCU callbacks freed in workers),
    # which must not be billed to the next tool measured.
    for _ in 1 2 3; do
      settle; fl+=("$(loop_rate 200 "$@")")
      settle; bw+=("$(loop_rate 200 bwrap --unshare-all --die-with-parent --ro-bind "$root" / --proc /proc \
        --dev /dev --tmpfs /tmp --ro-bind "$J" /tmp/j $inbox)")
      settle; jw+=("$(judge_rate "$lang" "$src")")
      settle; jc+=("$(judge_rate "$lang" "$src" --no-reuse)")
    done
    pm=$(loop_rate 20 podman --runtime runc --cgroup-manager cgroupfs run --rm -i --network none \
      --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 -v "$J:/tmp/j:ro" --rootfs "$root:O" \
      $inbox 2>/dev/null || echo nan)
    local f b w c
    f=$(median3 "${fl[@]}") b=$(median3 "${bw[@]}") w=$(median3 "${jw[@]}") c=$(median3 "${jc[@]}")
    echo
    echo "judging throughput: $label A+B over 200 tests, parallelism 2 (test runs per second, median of 3)"
    printf '  %-48s %8.1f\n' "unsandboxed floor (fork/exec on the host)" "$f" \
      "judgebox judge (warm sandboxes; cgroup + seccomp)" "$w" \
      "judgebox judge --no-reuse (fresh sandbox per test)" "$c" \
      "bwrap, called directly (no limits)" "$b" "podman run per test (runc; 20 tests)" "$pm"
    awk -v f="$f" -v w="$w" -v c="$c" -v b="$b" -v p="$pm" 'BEGIN {
      printf "  judgebox/floor = %.2fx, --no-reuse/floor = %.2fx, judgebox/bwrap = %.2fx, judgebox/podman = %.1fx\n", w/f, c/f, w/b, w/p }'
  }
  GCC_ROOT=$("$JB" image inspect judgebox/gcc:bookworm --json 2>/dev/null | jq -r '.rootfs // empty' || true)
  if [ -n "$GCC_ROOT" ]; then
    cat > "$J/sol.cpp" <<'CPP'
#include <iostream>
int main() { long long a, b; std::cin >> a >> b; std::cout << a + b << '\n'; }
CPP
    # Compiled by judgebox itself in the gcc image, so every peer runs the same binary.
    "$JB" run --rootfs "$GCC_ROOT" --file "$J/sol.cpp" --copy-out "sol:$J/sol" -- \
      g++ -O2 -o sol sol.cpp >/dev/null
    chmod 755 "$J/sol"
    judge_section "C++" cpp "$J/sol.cpp" "$GCC_ROOT" /tmp/j/sol "$J/sol"
    echo "  targets: judgebox/floor >= 0.5x, judgebox/bwrap >= 3x"
  else
    echo; echo "(C++ judging throughput skipped: judgebox/gcc:bookworm is not in the store; run scripts/build-images.sh gcc)"
  fi
  PY_ROOT=$("$JB" image inspect judgebox/python3:bookworm --json 2>/dev/null | jq -r '.rootfs // empty' || true)
  if [ -n "$PY_ROOT" ]; then
    printf 'a, b = map(int, input().split())\nprint(a + b)\n' > "$J/sol.py"
    judge_section "Python" python3 "$J/sol.py" "$PY_ROOT" "python3 /tmp/j/sol.py" \
      -r "$PY_ROOT" -- python3 -c "$(cat "$J/sol.py")"
    echo "  target: judgebox/floor >= 0.8x"
  else
    echo; echo "(Python judging throughput skipped: judgebox/python3:bookworm is not in the store)"
  fi
fi

# The isolate front end: `isolate --run -- /bin/true` through an `isolate` symlink (a box
# initialised once, a temporary config) against `judgebox run /bin/true`, same run. isolate
# mode builds a tmpfs root with its default directory rules from the host; without --cg it
# uses no cgroup (as isolate), with --cg one run cgroup (as judgebox run). Target <= 1.1x.
if want isolate; then
  I=$WORK/isolate; mkdir -p "$I/bin"; chmod 755 "$I"
  ln -s "$JB" "$I/bin/isolate"
  printf 'box_root = %s/boxes\nlock_root = %s/locks\nfirst_uid = 64000\nfirst_gid = 64000\nnum_boxes = 2\n' "$I" "$I" >"$I/cf"
  export ISOLATE_CONFIG_FILE=$I/cf
  "$I/bin/isolate" --cg -b 0 --init >/dev/null
  "$I/bin/isolate" -b 1 --init >/dev/null
  jb_run=$(bench iso-jb "$JB" run --rootfs "$ROOTFS" -- /bin/true)
  iso=$(bench iso-plain "$I/bin/isolate" -s -b 1 --run -- /bin/true)
  iso_cg=$(bench iso-cg "$I/bin/isolate" -s --cg -b 0 --run -- /bin/true)
  echo
  echo "isolate front end (/bin/true, median of $RUNS runs, ms)"
  printf '  %-36s %8.2f\n' "judgebox run (cgroup + seccomp)" "$jb_run" "isolate --run (no cgroup, as isolate)" "$iso" "isolate --cg --run" "$iso_cg"
  awk -v j="$jb_run" -v i="$iso" -v c="$iso_cg" 'BEGIN {
    printf "  isolate/run = %.2fx, isolate --cg/run = %.2fx (target <= 1.1x)\n", i/j, c/j }'
  unset ISOLATE_CONFIG_FILE
fi

# judgebox serve: Python A+B through the API against judge and the host (needs python3 image).
if want serve; then
  if "$JB" image inspect judgebox/python3:bookworm >/dev/null 2>&1; then
    python3 scripts/bench-serve.py "$JB" --workers 2 --rounds "${SERVE_ROUNDS:-3}"
  else
    echo; echo "(serve benchmark skipped: judgebox/python3:bookworm is not in the store; run scripts/build-images.sh python3)"
  fi
fi

# judgebox serve on PostgreSQL: an API process and 1, then 2, worker processes (COUNT=1
# each) against the embedded SQLite backend (needs the python3 image and PostgreSQL).
if want cluster; then
  if "$JB" image inspect judgebox/python3:bookworm >/dev/null 2>&1; then
    python3 scripts/bench-cluster.py "$JB"
  else
    echo; echo "(cluster benchmark skipped: judgebox/python3:bookworm is not in the store; run scripts/build-images.sh python3)"
  fi
fi
