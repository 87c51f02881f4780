#!/usr/bin/env bash
# Builds the Debian package of judgebox with dpkg-deb (no cargo-deb needed):
#   /usr/bin/judgebox                         the static binary (host architecture)
#   /usr/share/judgebox/build-images.sh       what `judgebox lang build LANG...` runs
#   /usr/share/judgebox/manifests/*.toml      the language manifests (also built in)
#   /usr/share/judgebox/seccomp/*.json        the seccomp profiles (also built in)
#   /usr/share/man/man1/judgebox.1.gz         generated from the clap definition
#   bash/zsh/fish completions                 generated from the clap definition
#   /usr/share/doc/judgebox/examples/judgebox.service   unit template with Delegate=yes
#
# usage: scripts/package.sh [--out DIR] [--no-build]
# Prints the path of the .deb (default DIR: target/debian).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=$REPO/target/debian
BUILD=1
while [ $# -gt 0 ]; do
  case $1 in
    --out) [ $# -ge 2 ] || { echo "package: --out needs a directory" >&2; exit 2; }; OUT=$2; shift ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "package: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
for t in dpkg-deb dpkg gzip; do
  command -v "$t" >/dev/null || { echo "package: $t not found (apt-get install dpkg-dev)" >&2; exit 2; }
done
cd "$REPO"
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
[ "$BUILD" = 0 ] || cargo build --release --quiet
BIN=$REPO/target/$TRIPLE/release/judgebox
[ -x "$BIN" ] || { echo "package: $BIN missing (build it or drop --no-build)" >&2; exit 2; }
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
ARCH=$(dpkg --print-architecture)

STAGE=$(mktemp -d /tmp/judgebox-deb.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
R=$STAGE/root
install -D -m 0755 "$BIN" "$R/usr/bin/judgebox"
install -D -m 0755 scripts/build-images.sh "$R/usr/share/judgebox/build-images.sh"
install -D -m 0644 scripts/build-images.md "$R/usr/share/doc/judgebox/build-images.md"
for f in rootfs-manifests/*.toml; do install -D -m 0644 "$f" "$R/usr/share/judgebox/manifests/${f##*/}"; done
for f in seccomp/*.json; do install -D -m 0644 "$f" "$R/usr/share/judgebox/seccomp/${f##*/}"; done
mkdir -p "$R/usr/share/man/man1"
"$BIN" manpage | gzip -9n >"$R/usr/share/man/man1/judgebox.1.gz"
install -d "$R/usr/share/bash-completion/completions" "$R/usr/share/zsh/vendor-completions" \
  "$R/usr/share/fish/vendor_completions.d"
"$BIN" completions bash >"$R/usr/share/bash-completion/completions/judgebox"
"$BIN" completions zsh >"$R/usr/share/zsh/vendor-completions/_judgebox"
"$BIN" completions fish >"$R/usr/share/fish/vendor_completions.d/judgebox.fish"
install -D -m 0644 scripts/judgebox.service "$R/usr/share/doc/judgebox/examples/judgebox.service"
install -D -m 0644 README.md "$R/usr/share/doc/judgebox/README.md"
cat >"$R/usr/share/doc/judgebox/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: judgebox
License: Apache-2.0
Files: *
License: Apache-2.0
 On Debian systems the full text is in /usr/share/common-licenses/Apache-2.0.
COPY
SIZE=$(du -sk "$R" | cut -f1)
mkdir -p "$R/DEBIAN"
cat >"$R/DEBIAN/control" <<CTRL
Package: judgebox
Version: $VERSION
Architecture: $ARCH
Maintainer: judgebox developers <judgebox@localhost>
Installed-Size: $SIZE
Section: utils
Priority: optional
Recommends: systemd
Suggests: debootstrap, umoci, jq
Description: daemonless sandbox for online judges
 Runs untrusted programs in namespaces with a read-only rootfs, cgroup v2/v1
 limits (rlimits where cgroups are unavailable) and seccomp, and judges
 submissions against test cases. Static binary; run \`judgebox doctor\` first.
 Language images: \`judgebox lang build cpp python3\` (needs debootstrap, umoci,
 jq) or \`judgebox image pull REF\`.
CTRL
mkdir -p "$OUT"
DEB=$OUT/judgebox_${VERSION}_${ARCH}.deb
dpkg-deb --root-owner-group -Zxz --build "$R" "$DEB" >/dev/null
echo "$DEB"
