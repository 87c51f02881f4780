#!/usr/bin/env bash
# Cross-checks judgebox's layer unpacker against umoci on a real image: unpacks LAYOUT:TAG
# with `umoci unpack` and with judgebox (examples/unpack.rs), then compares the two trees
# entry by entry: path, type, mode (with setuid/setgid/sticky), uid, gid, size, mtime,
# symlink target, sha256 of file contents and hardlink groups (+ xattrs if getfattr exists).
#
#   scripts/crosscheck-umoci.sh [LAYOUT_DIR [TAG]]
#
# Defaults: /var/cache/judgebox/oci and judgebox/python3:bookworm. Exits 0 with "SKIP" when
# the layout, the tag or umoci is missing; exits 1 if the trees differ. Runs as root.
set -euo pipefail

LAYOUT=${1:-/var/cache/judgebox/oci}
TAG=${2:-judgebox/python3:bookworm}
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)

if [[ ! -f $LAYOUT/index.json ]]; then
    echo "SKIP: no OCI image layout at $LAYOUT (build the images first)"
    exit 0
fi
if ! grep -q "\"$TAG\"" "$LAYOUT/index.json"; then
    echo "SKIP: no image tagged $TAG in $LAYOUT"
    exit 0
fi
if ! command -v umoci >/dev/null; then
    echo "SKIP: umoci is not installed (apt-get install -y umoci)"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "SKIP: needs root (ownership and setuid bits must be restored by both tools)"
    exit 0
fi

echo "building examples/unpack (release)..."
(cd "$ROOT_DIR" && cargo build --quiet --release --example unpack)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT_DIR/target}
UNPACK=$TARGET_DIR/release/examples/unpack

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/judgebox-crosscheck.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

echo "umoci unpack --image $LAYOUT:$TAG"
umoci unpack --image "$LAYOUT:$TAG" "$WORK/bundle" >/dev/null
echo "judgebox unpack $LAYOUT $TAG"
"$UNPACK" "$LAYOUT" "$TAG" "$WORK/judgebox"

# One line per entry below ROOT (tab-separated; Debian paths hold no tabs or newlines):
# path type mode uid gid size mtime link-target sha256 hardlink-group xattrs
describe() {
    local root=$1 out=$2
    (cd "$root" && find . -mindepth 1 -printf '%P\t%y\t%#m\t%U\t%G\t%s\t%T@\t%n\t%i\t%l\n') |
        LC_ALL=C sort >"$out.meta"
    (cd "$root" && find . -mindepth 1 -type f -print0 | LC_ALL=C sort -z |
        xargs -0 -r sha256sum) | sed 's|  \./|\t|' >"$out.sha"
    if command -v getfattr >/dev/null; then
        (cd "$root" && getfattr --absolute-names --no-dereference -R -d -m - -e hex . 2>/dev/null) |
            awk '/^# file: /{f=substr($0,9); sub(/^\.\//,"",f); next}
                 /=/{x[f]=x[f] (x[f]==""?"":",") $0}
                 END{for (k in x) print k "\t" x[k]}' >"$out.xattr"
    else
        : >"$out.xattr"
    fi
    awk -F'\t' -v OFS='\t' '
        FILENAME == ARGV[1] { sha[$2] = $1; next }
        FILENAME == ARGV[2] { xattr[$1] = $2; next }
        {
            path = $1; type = $2; size = (type == "f") ? $6 : "-"
            group = "-"
            if (type == "f" && $8 > 1) {
                if (!($9 in leader)) leader[$9] = path
                group = leader[$9]
            }
            print path, type, $3, $4, $5, size, $7, (type == "l") ? $10 : "-",
                  (type == "f") ? sha[path] : "-", group, (path in xattr) ? xattr[path] : "-"
        }' "$out.sha" "$out.xattr" "$out.meta" >"$out"
}

describe "$WORK/bundle/rootfs" "$WORK/umoci.txt"
describe "$WORK/judgebox" "$WORK/judgebox.txt"

entries=$(wc -l <"$WORK/umoci.txt")
with_xattrs=$(awk -F'\t' '$11 != "-"' "$WORK/umoci.txt" | wc -l)
diffs=$(diff "$WORK/umoci.txt" "$WORK/judgebox.txt" | grep -c '^[<>]' || true)
echo "compared $entries entries (umoci) with $(wc -l <"$WORK/judgebox.txt") (judgebox); $with_xattrs with xattrs"
if ! command -v getfattr >/dev/null; then
    echo "note: getfattr not installed (apt-get install -y attr), xattrs not compared"
fi

# The unpack roots themselves: umoci creates bundle/rootfs itself; both then apply the
# layer's './' entry if it has one. Shown, not counted.
stat -c 'root (umoci):    mode %a uid %u gid %g mtime %Y' "$WORK/bundle/rootfs"
stat -c 'root (judgebox): mode %a uid %u gid %g mtime %Y' "$WORK/judgebox"

if [[ $diffs -ne 0 ]]; then
    echo "DIFFERENCES: $diffs lines (< umoci, > judgebox), first 40:"
    diff "$WORK/umoci.txt" "$WORK/judgebox.txt" | grep '^[<>]' | head -40
    exit 1
fi
echo "OK: 0 differences"
