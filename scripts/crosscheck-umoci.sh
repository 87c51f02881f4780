#!/usr/bin/env bash
# Cross-checks judgebox's layer unpacker against umoci: unpacks an image with
# `umoci unpack` and with judgebox (examples/unpack.rs), then compares the two trees entry
# by entry: path, type, mode (with setuid/setgid/sticky), uid, gid, size, mtime, symlink
# target, sha256 of file contents, hardlink groups, and xattrs when getfattr exists.
#
#   scripts/crosscheck-umoci.sh [LAYOUT_DIR [TAG]]
#
# Two images are compared:
#  1. a small edge-case image that umoci itself builds here (2 layers: setuid/setgid,
#     security.capability and user.* xattrs, a FIFO, a hardlink group, then whiteouts of a
#     file and of two directories, a symlink replaced by a directory, a file rewritten in a
#     directory the layer does not list); needs no network;
#  2. the real image LAYOUT_DIR:TAG (default /var/cache/judgebox/oci and
#     judgebox/python3:bookworm), skipped with "SKIP" when absent.
# Exits 0 with "SKIP" when umoci is missing; exits 1 if any tree differs. Runs as root.
set -euo pipefail

LAYOUT=${1:-/var/cache/judgebox/oci}
TAG=${2:-judgebox/python3:bookworm}
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)

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
UNPACK=${CARGO_TARGET_DIR:-$ROOT_DIR/target}/$(rustc -vV | sed -n "s/^host: //p")/release/examples/unpack

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/judgebox-crosscheck.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
HAVE_GETFATTR=$(command -v getfattr >/dev/null && echo 1 || echo 0)

# One line per entry below a root (tab-separated; the compared paths hold no tabs or
# newlines): path type mode uid gid size mtime link-target sha256 hardlink-group xattrs
describe() {
    local root=$1 out=$2
    (cd "$root" && find . -mindepth 1 -printf '%P\t%y\t%#m\t%U\t%G\t%s\t%T@\t%n\t%i\t%l\n') |
        LC_ALL=C sort >"$out.meta"
    (cd "$root" && find . -mindepth 1 -type f -print0 | LC_ALL=C sort -z |
        xargs -0 -r sha256sum) | sed 's|  \./|\t|' >"$out.sha"
    if [[ $HAVE_GETFATTR == 1 ]]; then
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

FAILED=0

# Unpacks LAYOUT:TAG with both tools into $WORK/NAME and compares.
crosscheck() {
    local layout=$1 tag=$2 name=$3 dir=$WORK/$3
    mkdir -p "$dir"
    echo "== $name: $layout:$tag"
    umoci unpack --image "$layout:$tag" "$dir/bundle" >/dev/null
    "$UNPACK" "$layout" "$tag" "$dir/judgebox"
    describe "$dir/bundle/rootfs" "$dir/umoci.txt"
    describe "$dir/judgebox" "$dir/judgebox.txt"
    local entries xattrs diffs
    entries=$(wc -l <"$dir/umoci.txt")
    xattrs=$(awk -F'\t' '$11 != "-"' "$dir/umoci.txt" | wc -l)
    diffs=$(diff "$dir/umoci.txt" "$dir/judgebox.txt" | grep -c '^[<>]' || true)
    echo "compared $entries entries (umoci) with $(wc -l <"$dir/judgebox.txt") (judgebox); $xattrs with xattrs"
    # The roots themselves: umoci makes bundle/rootfs, the store makes judgebox's; both
    # then apply the layer's './' entry if it has one. Shown, not counted.
    stat -c 'root (umoci):    mode %a uid %u gid %g mtime %Y' "$dir/bundle/rootfs"
    stat -c 'root (judgebox): mode %a uid %u gid %g mtime %Y' "$dir/judgebox"
    if [[ $diffs -ne 0 ]]; then
        echo "DIFFERENCES: $diffs lines (< umoci, > judgebox), first 40:"
        diff "$dir/umoci.txt" "$dir/judgebox.txt" | grep '^[<>]' | head -40
        FAILED=1
    else
        echo "OK: 0 differences"
    fi
}

# An image with the edge cases Debian images lack, built by umoci (so its whiteouts are
# umoci's own): layer 1 from bundle a, layer 2 from the changes made in bundle b.
build_edge_image() {
    local layout=$WORK/edge-layout r
    umoci init --layout "$layout"
    umoci new --image "$layout:edge"
    umoci unpack --image "$layout:edge" "$WORK/edge-a" >/dev/null
    r=$WORK/edge-a/rootfs
    mkdir -p "$r/usr/bin" "$r/etc/d" "$r/var/spool/x" "$r/opq/sub" "$r/keep"
    echo ping >"$r/usr/bin/ping"
    echo su >"$r/usr/bin/su" && chmod 4755 "$r/usr/bin/su" && ln "$r/usr/bin/su" "$r/usr/bin/su2"
    chown 1000:1000 "$r/var/spool/x" && chmod 2775 "$r/var/spool/x"
    chmod 1777 "$r/keep"
    mkfifo -m 640 "$r/etc/fifo"
    ln -s ../usr/bin/su "$r/etc/sulink"
    echo a >"$r/opq/sub/a" && echo b >"$r/opq/b" && echo gone >"$r/etc/gone"
    if [[ $HAVE_GETFATTR == 1 ]]; then
        # cap_net_raw+ep (VFS_CAP_REVISION_2)
        setfattr -n security.capability -v 0x0100000200200000000000000000000000000000 "$r/usr/bin/ping"
        setfattr -n user.note -v hello "$r/etc/d"
    fi
    umoci repack --image "$layout:edge" "$WORK/edge-a" >/dev/null
    umoci unpack --image "$layout:edge" "$WORK/edge-b" >/dev/null
    r=$WORK/edge-b/rootfs
    rm "$r/etc/gone" && rm -r "$r/opq/sub" "$r/var/spool/x"
    echo c >"$r/opq/c"
    echo changed >"$r/usr/bin/su" # a directory (usr/bin) the layer does not list
    rm "$r/etc/sulink" && mkdir "$r/etc/sulink"
    umoci repack --image "$layout:edge" "$WORK/edge-b" >/dev/null
    echo "$layout"
}

crosscheck "$(build_edge_image)" edge edge
if [[ $HAVE_GETFATTR == 0 ]]; then
    echo "note: getfattr not installed (apt-get install -y attr), xattrs not compared"
fi

if [[ ! -f $LAYOUT/index.json ]]; then
    echo "SKIP: no OCI image layout at $LAYOUT (build the images first)"
elif ! grep -q "\"$TAG\"" "$LAYOUT/index.json"; then
    echo "SKIP: no image tagged $TAG in $LAYOUT"
else
    crosscheck "$LAYOUT" "$TAG" real
fi
exit "$FAILED"
