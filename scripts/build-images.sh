#!/usr/bin/env bash
# Builds judgebox's language images as one OCI image layout, from Debian packages:
#   judgebox/base:bookworm      debootstrap --variant=minbase, one layer
#   judgebox/<lang>:bookworm    base + one layer (apt-get install of the toolchain)
# Every language tag shares the base layer blob. The layout is a cache: a tag is rebuilt
# only when missing, when its recipe changed, when its base layer is no longer the
# current base's, or with --force. See scripts/build-images.md.
#
# usage: scripts/build-images.sh [--force] [--out DIR] [--list] [--no-import] [--reimport] [LANG...]
set -euo pipefail

SUITE=bookworm
# Bump when the build steps change in a way that should rebuild cached tags.
RECIPE_VERSION=1
# Fixed author and creation time: the config should not say when or where it was built.
AUTHOR=judgebox
CREATED=${SOURCE_DATE_EPOCH:+$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%dT%H:%M:%SZ)}
CREATED=${CREATED:-2023-06-10T00:00:00Z}   # bookworm's release day
PATH_ENV=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RECIPE_KEY=org.judgebox.recipe
REF_KEY=org.opencontainers.image.ref.name

# name -> packages / Cmd / extra Env (space-separated). Tag names are fixed: other code uses them.
LANGS=(base gcc python3 node java go rust bash)
declare -A PKGS=(
  [gcc]="gcc g++ libc6-dev"
  [python3]="python3"
  [node]="nodejs"
  [java]="openjdk-17-jdk-headless"
  [go]="golang-go"
  [rust]="rustc"
  [bash]="bc"
)
declare -A CMD=([base]=bash [gcc]=gcc [python3]=python3 [node]=node [java]=jshell [go]=go [rust]=rustc [bash]=bash)
# go writes its build cache under $HOME/.cache unless told otherwise; the sandbox's HOME
# is usually unwritable, so point it at /tmp (the runner may still override it).
declare -A ENV_EXTRA=([go]="GOCACHE=/tmp/go-cache GOPATH=/tmp/go GOFLAGS=-mod=mod")

# Language names as `judgebox lang ls` prints them (the manifests' `build` field) -> image.
declare -A ALIAS=([c]=gcc [cpp]=gcc [javascript]=node)

tag_of() { echo "judgebox/$1:$SUITE"; }
log() { echo "build-images: $*" >&2; }
die() { log "error: $*"; exit 1; }
now() { echo "${EPOCHREALTIME/,/.}"; }

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
  echo "LANG: ${LANGS[*]} (default: all)"
}

# ---------- options ----------
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${JUDGEBOX_IMAGE_CACHE:-/var/cache/judgebox/oci}
# The repo's build (target/<host triple>/release/judgebox), else an installed judgebox.
if [ -z "${JUDGEBOX:-}" ]; then
  JUDGEBOX=$REPO/target/$(rustc -vV 2>/dev/null | sed -n "s/^host: //p")/release/judgebox
  [ -x "$JUDGEBOX" ] || JUDGEBOX=$(command -v judgebox || echo "$JUDGEBOX")
fi
FORCE=0 IMPORT=1 REIMPORT=0 LIST=0
WANT=()
while [ $# -gt 0 ]; do
  case $1 in
    --force) FORCE=1 ;;
    --out) [ $# -ge 2 ] || die "--out needs a directory"; OUT=$2; shift ;;
    --out=*) OUT=${1#--out=} ;;
    --list) LIST=1 ;;
    --no-import) IMPORT=0 ;;
    --reimport) REIMPORT=1 ;;
    -h|--help) usage; exit 0 ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) l=${ALIAS[$1]:-$1}
       [[ " ${LANGS[*]} " == *" $l "* ]] || die "unknown language '$1' (one of: ${LANGS[*]}, or a name \`judgebox lang ls\` prints: ${!ALIAS[*]})"
       [[ " ${WANT[*]} " == *" $l "* ]] || WANT+=("$l") ;;
  esac
  shift
done
if [ "$LIST" = 1 ]; then
  for l in "${LANGS[@]}"; do printf '%-8s %s\n' "$l" "$(tag_of "$l")"; done
  exit 0
fi
[ ${#WANT[@]} -gt 0 ] || WANT=("${LANGS[@]}")
[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot and umoci unpack keep file owners)"
for t in debootstrap umoci jq unshare chroot flock; do
  command -v "$t" >/dev/null || die "$t not found: run scripts/install-deps.sh"
done
OUT=$(realpath -m "$OUT")
PARENT=$(dirname "$OUT")
# Downloaded .debs persist next to the layout so --force and new languages need no re-download.
DEB_CACHE=${JUDGEBOX_DEB_CACHE:-$PARENT/debs}

# ---------- the layout (read side) ----------
# Manifest JSON of TAG in LAYOUT, or nothing.
manifest_of() {
  local layout=$1 tag=$2 digest
  [ -f "$layout/index.json" ] || return 0
  digest=$(jq -r --arg t "$tag" --arg k "$REF_KEY" \
    '[(.manifests // [])[] | select(.annotations[$k] == $t)][0].digest // empty' "$layout/index.json")
  [ -n "$digest" ] && [ -f "$layout/blobs/${digest/://}" ] && cat "$layout/blobs/${digest/://}"
  return 0
}

# Short hash of what goes into NAME's image; stored as a manifest annotation.
recipe_of() {
  local name=$1
  printf 'v%s|%s|%s|%s|%s|%s|%s\n' "$RECIPE_VERSION" "$SUITE" "$name" "${PKGS[$name]:-}" \
    "${CMD[$name]}" "${ENV_EXTRA[$name]:-}" "$PATH_ENV" | sha256sum | cut -c1-16
}

# Why NAME needs building ("" if it is up to date).
stale_reason() {
  local name=$1 m base_layer
  m=$(manifest_of "$OUT" "$(tag_of "$name")")
  [ -n "$m" ] || { echo "missing"; return; }
  [ "$(jq -r --arg k "$RECIPE_KEY" '.annotations[$k] // ""' <<<"$m")" = "$(recipe_of "$name")" ] \
    || { echo "recipe changed"; return; }
  [ "$name" = base ] && return
  base_layer=$(manifest_of "$OUT" "$(tag_of base)" | jq -r '.layers[0].digest')
  [ "$(jq -r '[(.layers | length), .layers[0].digest] | join(" ")' <<<"$m")" = "2 $base_layer" ] \
    || echo "base changed"
}

# ---------- host apt sources -> mirror ----------
# Prints "URI SUITE" for each enabled deb source of the host (deb822 and one-line formats).
host_apt_sources() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'function flush(  n, m, i, j, U, S) {
           if (types ~ /(^|[ \t])deb([ \t]|$)/ && enabled !~ /no/) {
             n = split(uris, U); m = split(suites, S)
             for (i = 1; i <= n; i++) for (j = 1; j <= m; j++) print U[i], S[j]
           }
           types = uris = suites = enabled = ""
         }
         /^[ \t]*#/ { next }
         /^[ \t]*$/ { flush(); next }
         { key = tolower($1); val = substr($0, index($0, ":") + 1) }
         key == "types:" { types = val }  key == "uris:" { uris = val }
         key == "suites:" { suites = val } key == "enabled:" { enabled = tolower(val) }
         END { flush() }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # deb [opts] URI SUITE COMPONENTS...
    awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
                       print $i, $(i + 1) }' "$f"
  done
}

# Sets MIRROR / SECURITY_MIRROR / UPDATES from the host's Debian sources (empty if none:
# then debootstrap uses its own default and we keep the sources.list it writes).
pick_mirror() {
  local codes='(buster|bullseye|bookworm|trixie|forky|duke|sid|oldstable|stable|testing|unstable)'
  local sources
  sources=$(host_apt_sources)
  MIRROR=${JUDGEBOX_DEBIAN_MIRROR:-$(awk -v re="^$codes\$" '$2 ~ re { print $1; exit }' <<<"$sources")}
  SECURITY_MIRROR=$(awk -v re="^$codes-security\$" '$2 ~ re { print $1; exit }' <<<"$sources")
  UPDATES=$(awk -v re="^$codes-updates\$" '$2 ~ re { print "yes"; exit }' <<<"$sources")
  MIRROR=${MIRROR%/} SECURITY_MIRROR=${SECURITY_MIRROR%/}
}

# ---------- chroot ----------
# Runs SCRIPT with sh inside ROOT. /proc, /dev, the .deb cache (over /var/cache/apt/archives)
# and the host's resolv.conf are mounted in a private mount namespace: no mount can outlive
# the command, even if we are killed, and none of it ends up in the layer.
in_chroot() {
  local root=$1 script=$2
  mkdir -p "$DEB_CACHE/partial"
  # shellcheck disable=SC2016  # the inner script expands its own arguments
  unshare --mount --propagation private -- /bin/sh -euc '
    root=$1 debs=$2 script=$3 path=$4
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount --bind "$debs" "$root/var/cache/apt/archives"
    [ -e "$root/etc/resolv.conf" ] || : >"$root/etc/resolv.conf"
    mount --bind /etc/resolv.conf "$root/etc/resolv.conf"
    exec chroot "$root" /usr/bin/env -i PATH="$path" HOME=/root LC_ALL=C.UTF-8 \
      DEBIAN_FRONTEND=noninteractive /bin/sh -euc "$script"
  ' sh "$root" "$DEB_CACHE" "$script" "$PATH_ENV"
}

# apt-get with quiet, non-interactive, no-recommends settings.
APT='apt-get -qq -y -o Dpkg::Use-Pty=0 -o APT::Install-Recommends=false -o APT::Install-Suggests=false'

# Runs one build step (PHASE names it in the timing summary) with its output appended to
# $LOGF. Not wrapped in "if": that would turn off set -e inside the functions it runs. A
# failure exits the script and on_exit reports the phase and the log.
PHASES="" CUR_PHASE=""
step() {
  local phase=$1 t; shift
  t=$(now) CUR_PHASE=$phase
  "$@" >>"$LOGF" 2>&1
  CUR_PHASE=""
  PHASES+="${PHASES:+, }$phase $(elapsed "$t")"
}
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------- scratch layouts ----------
# Each tag is built in its own scratch layout under WORK (same filesystem as OUT) and only
# then published: a failed or interrupted build never touches a tag in OUT.

# Creates WORK/layout with TAG as an empty image, unpacked to the bundle WORK/bundle.
scratch_empty() {
  umoci init --layout "$1/layout"
  umoci new --image "$1/layout:$2"
  umoci unpack --image "$1/layout:$2" "$1/bundle"
}

# Creates layout DIR holding only the blobs of base (hard links) and its tag.
scratch_from_base() {
  local dir=$1 base_tag m d
  base_tag=$(tag_of base)
  umoci init --layout "$dir"
  m=$(manifest_of "$OUT" "$base_tag")
  for d in $(jq -r '.config.digest, .layers[].digest' <<<"$m") \
           $(jq -r --arg t "$base_tag" --arg k "$REF_KEY" \
               '(.manifests // [])[] | select(.annotations[$k] == $t) | .digest' "$OUT/index.json"); do
    ln -f "$OUT/blobs/${d/://}" "$dir/blobs/${d/://}"
  done
  jq --arg t "$base_tag" --arg k "$REF_KEY" '.manifests |= ((. // []) | map(select(.annotations[$k] == $t)))' \
    "$OUT/index.json" >"$dir/index.json"
}

# Copies the blobs of TAG (manifest, config, layers; not the intermediate ones umoci left in
# the scratch layout) into OUT as hard links, then points TAG at its manifest with one
# atomic rename of index.json: blobs first, so the index never names a missing blob.
publish() {
  local scratch=$1 tag=$2 desc d tmp new=()
  desc=$(jq -c --arg t "$tag" --arg k "$REF_KEY" \
    '[(.manifests // [])[] | select(.annotations[$k] == $t)][0]' "$scratch/index.json")
  d=$(jq -r .digest <<<"$desc")
  for d in "$d" $(jq -r '.config.digest, .layers[].digest' "$scratch/blobs/${d/://}"); do
    [ -e "$OUT/blobs/${d/://}" ] && continue
    ln "$scratch/blobs/${d/://}" "$OUT/blobs/${d/://}"
    new+=("$OUT/blobs/${d/://}")
  done
  tmp=$(mktemp "$OUT/.index.json.XXXXXX")
  jq --argjson d "$desc" --arg t "$tag" --arg k "$REF_KEY" '
    if any((.manifests // [])[]; .annotations[$k] == $t)
    then .manifests |= map(if .annotations[$k] == $t then $d else . end)
    else .manifests += [$d] end' "$OUT/index.json" >"$tmp"
  chmod 644 "$tmp"
  sync "${new[@]}" "$tmp"
  mv -f "$tmp" "$OUT/index.json"
}

# Removes blobs no tag refers to: those of replaced tags or of an interrupted publish.
# (umoci gc does the same but first re-hashes every blob: ~18 s for 700 MB.)
gc_layout() {
  local keep m b n=0
  keep=$(jq -r '(.manifests // [])[].digest' "$OUT/index.json")
  for m in $keep; do
    keep+=$'\n'$(jq -r '.config.digest, .layers[].digest' "$OUT/blobs/${m/://}")
  done
  for b in "$OUT"/blobs/sha256/*; do
    [ -e "$b" ] || continue
    grep -qxF "sha256:${b##*/}" <<<"$keep" || { rm -f "$b"; n=$((n + 1)); }
  done
  [ "$n" = 0 ] || log "removed $n unreferenced blob(s)"
}

# Sets TAG's config in layout L. Annotating the manifest with the recipe is what makes the
# next run see the tag as up to date.
configure() {
  local l=$1 name=$2 tag arch e env_args=()
  tag=$(tag_of "$name")
  arch=$(oci_arch)
  for e in "PATH=$PATH_ENV" "LANG=C.UTF-8" ${ENV_EXTRA[$name]:-}; do env_args+=(--config.env "$e"); done
  umoci config --image "$l:$tag" --no-history --author "$AUTHOR" --created "$CREATED" \
    --architecture "$arch" --os linux "${env_args[@]}" --config.workingdir / \
    --clear config.cmd --config.cmd "${CMD[$name]}" \
    --config.label "org.opencontainers.image.title=$tag" \
    --manifest.annotation "$RECIPE_KEY=$(recipe_of "$name")"
}

# OCI architecture name for this Debian architecture.
oci_arch() {
  case $(dpkg --print-architecture) in
    i386) echo 386 ;; armhf|armel) echo arm ;; ppc64el) echo ppc64le ;; mips64el) echo mips64le ;;
    *) dpkg --print-architecture ;;
  esac
}

# ---------- builds ----------
# judgebox/base: debootstrap minbase, Debian sources from the host, upgraded, slimmed, and
# with /var/lib/apt/lists kept populated so the language layers' cleanup makes whiteouts.
build_base() {
  local work=$1 tag rootfs
  tag=$(tag_of base)
  step scratch scratch_empty "$work" "$tag"
  rootfs=$work/bundle/rootfs
  pick_mirror
  log "base: debootstrap --variant=minbase $SUITE${MIRROR:+ (mirror from host apt sources)}"
  mkdir -p "$DEB_CACHE/partial"
  step debootstrap debootstrap --variant=minbase --components=main --cache-dir="$DEB_CACHE" \
    "$SUITE" "$rootfs" ${MIRROR:+"$MIRROR"}
  # The runtime mounts its own /dev, /proc and network files: keep the image's empty, and
  # drop what debootstrap copied from the host.
  mountpoint -q "$rootfs/dev" && die "$rootfs/dev is a mount point"
  find "$rootfs/dev" -mindepth 1 -delete
  rm -f "$rootfs"/var/cache/apt/archives/*.deb "$rootfs/var/log/bootstrap.log"
  : >"$rootfs/etc/resolv.conf"
  echo judgebox >"$rootfs/etc/hostname"
  printf '127.0.0.1\tlocalhost judgebox\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$rootfs/etc/hosts"
  write_apt_config "$rootfs"
  log "base: apt-get update, dist-upgrade"
  step apt in_chroot "$rootfs" "
    $APT update
    $APT dist-upgrade
    # Docs and man pages are excluded from now on (see dpkg.cfg.d); drop the ones already here.
    find /usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
    find /usr/share/doc -mindepth 1 -type d -empty -delete
    rm -rf /usr/share/man/* /usr/share/info/* /usr/share/groff/* /usr/share/lintian/* /tmp/* /root/.cache
    mkdir -p /usr/share/man/man1   # some postinsts (update-alternatives) expect it"
  compgen -G "$rootfs/var/lib/apt/lists/*_Packages" >/dev/null ||
    die "base: apt lists are empty after apt-get update"
  log "base: repack"
  step repack umoci repack --image "$work/layout:$tag" --history.author "$AUTHOR" \
    --history.created "$CREATED" \
    --history.created_by "debootstrap --variant=minbase $SUITE; apt-get update; apt-get dist-upgrade" \
    "$work/bundle"
  step config configure "$work/layout" base
  step publish publish "$work/layout" "$tag"
}

# Sources for the chroot (from the host's mirror, if we found one), apt settings, and
# slim-image dpkg excludes.
write_apt_config() {
  local root=$1
  if [ -n "$MIRROR" ]; then
    {
      echo "deb $MIRROR $SUITE main"
      [ -z "$UPDATES" ] || echo "deb $MIRROR $SUITE-updates main"
      [ -z "$SECURITY_MIRROR" ] || echo "deb $SECURITY_MIRROR $SUITE-security main"
    } >"$root/etc/apt/sources.list"
  fi
  # No translation indexes: the base keeps the lists (so later layers whiteout something
  # real) and they need not be bigger than that. They stay plain text, which the layer's
  # gzip shrinks better than apt's own lz4 (GzipIndexes) would.
  cat >"$root/etc/apt/apt.conf.d/90judgebox" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Acquire::Languages "none";
EOF
  cat >"$root/etc/dpkg/dpkg.cfg.d/90judgebox-slim" <<'EOF'
# judgebox images: no docs or man pages (copyright files stay)
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
EOF
}

# judgebox/NAME: base + one layer. The cleanup deletes files that exist in the base layer,
# so the layer carries real .wh. whiteouts.
build_lang() {
  local work=$1 name=$2 tag rootfs pkgs=${PKGS[$2]}
  tag=$(tag_of "$name")
  step scratch scratch_from_base "$work/layout"
  step unpack umoci unpack --image "$work/layout:$(tag_of base)" "$work/bundle"
  rootfs=$work/bundle/rootfs
  log "$name: installing $pkgs"
  step install in_chroot "$rootfs" "
    $APT install $pkgs
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt/* /tmp/* /root/.cache"
  log "$name: repack"
  step repack umoci repack --image "$work/layout:$tag" --history.author "$AUTHOR" \
    --history.created "$CREATED" \
    --history.created_by "apt-get install --no-install-recommends $pkgs; rm -rf /var/lib/apt/lists/*" \
    "$work/bundle"
  step config configure "$work/layout" "$name"
  step publish publish "$work/layout" "$tag"
}

# ---------- import into judgebox's store ----------
# Whether the store already has the tag (false when judgebox is missing: nothing to ask).
in_store() {
  [ -x "$JUDGEBOX" ] && "$JUDGEBOX" image inspect "$1" >/dev/null 2>&1
}

import_tags() {
  local t
  [ $# -gt 0 ] || { log "import: nothing new to import"; return 0; }
  if [ ! -x "$JUDGEBOX" ]; then
    log "import: skipped: $JUDGEBOX not found (build it, or set JUDGEBOX=...)"; return 0
  fi
  if ! "$JUDGEBOX" image --help >/dev/null 2>&1; then
    log "import: skipped: $JUDGEBOX has no 'image' subcommand"; return 0
  fi
  for t in "$@"; do
    log "import: $t"
    "$JUDGEBOX" image import "$OUT" --tag "$t"
  done
}

# ---------- main ----------
# Reports a failed step (its log is kept next to the layout, since WORK goes) and removes WORK.
on_exit() {
  local rc=$? what
  exec 1>&7 2>&8   # a signal may land while a step's output goes to its log
  if [ "$rc" != 0 ] && [ -n "$CUR_PHASE" ] && [ -f "${LOGF:-}" ]; then
    cp "$LOGF" "$PARENT/build-images.failed.log"
    tail -n 25 "$LOGF" >&2
    if [ "$rc" = 130 ]; then what="interrupted during $CUR_PHASE"; else what="$CUR_PHASE failed (exit $rc)"; fi
    log "error: $CUR_NAME: $what; log: $PARENT/build-images.failed.log"
  fi
  [ -z "${WORK:-}" ] || rm -rf --one-file-system "$WORK"
}

exec 7>&1 8>&2
mkdir -p "$PARENT"
exec 9>"$PARENT/.build-images.lock"
flock -n 9 || { log "waiting for another build-images run on $PARENT"; flock 9; }
# Leftovers of a killed run (the lock says no run is active). Our mounts lived in private
# namespaces, so these are plain directories; --one-file-system is a second guard.
rm -rf --one-file-system "$PARENT"/.build-images.work.*
WORK=$(mktemp -d "$PARENT/.build-images.work.XXXXXX")
trap on_exit EXIT
trap 'exit 130' INT TERM

if [ ! -f "$OUT/oci-layout" ]; then
  [ ! -e "$OUT" ] || rmdir "$OUT" 2>/dev/null || die "$OUT exists and is not an OCI layout"
  umoci init --layout "$WORK/init"
  mv "$WORK/init" "$OUT"
fi
rm -f "$OUT"/.index.json.*

# base is built first when asked for, or when a wanted language needs it and it is missing.
order=()
for l in "${LANGS[@]}"; do [[ " ${WANT[*]} " == *" $l "* ]] && order+=("$l"); done
if [ "${order[0]}" != base ] && [ -z "$(manifest_of "$OUT" "$(tag_of base)")" ]; then
  log "base image missing: building it first"
  order=(base "${order[@]}")
fi

T0=$(now)
declare -A SECS STATUS
built=() imports=()
for name in "${order[@]}"; do
  tag=$(tag_of "$name")
  reason=$(stale_reason "$name")
  if [ -z "$reason" ] && [ "$FORCE" = 0 ]; then
    log "$name: $tag up to date"
    STATUS[$name]="up to date"
    # Up to date here but missing from judgebox's store (a new store, a pruned image): import.
    if [ "$REIMPORT" = 1 ] || ! in_store "$tag"; then imports+=("$tag"); fi
    continue
  fi
  [ -n "$reason" ] || reason="--force"
  log "$name: building $tag ($reason)"
  t=$(now)
  mkdir "$WORK/$name"
  LOGF=$WORK/$name/build.log PHASES="" CUR_NAME=$name
  if [ "$name" = base ]; then build_base "$WORK/$name"; else build_lang "$WORK/$name" "$name"; fi
  rm -rf --one-file-system "${WORK:?}/$name"
  SECS[$name]=$(elapsed "$t")
  STATUS[$name]="built"
  log "$name: done in ${SECS[$name]} s ($PHASES)"
  built+=("$name") imports+=("$tag")
done

if [ ${#built[@]} -gt 0 ]; then
  if [[ " ${built[*]} " == *" base "* ]]; then
    stale=()
    for l in "${LANGS[@]:1}"; do
      [ -n "$(manifest_of "$OUT" "$(tag_of "$l")")" ] && [ -n "$(stale_reason "$l")" ] && stale+=("$l")
    done
    [ ${#stale[@]} -eq 0 ] || log "note: base was rebuilt; now stale (rerun to rebuild): ${stale[*]}"
  fi
else
  log "up to date"
fi

gc_layout

# Summary: tag, layers, size of the top layer and of all layers (compressed), build time.
printf '%-28s %6s %10s %10s %8s  %s\n' TAG LAYERS TOP-MB TOTAL-MB SECONDS STATUS >&2
for name in "${order[@]}"; do
  m=$(manifest_of "$OUT" "$(tag_of "$name")")
  jq -r --arg t "$(tag_of "$name")" --arg s "${SECS[$name]:--}" --arg st "${STATUS[$name]}" \
    '[$t, (.layers | length), .layers[-1].size, ([.layers[].size] | add), $s, $st] | @tsv' <<<"$m" |
    awk -F'\t' '{ printf "%-28s %6s %10.1f %10.1f %8s  %s\n", $1, $2, $3 / 1e6, $4 / 1e6, $5, $6 }' >&2
done
log "total $(elapsed "$T0") s; layout $OUT"

[ "$IMPORT" = 0 ] || import_tags "${imports[@]}"
