#!/usr/bin/env bash
# Checks the layout written by scripts/build-images.sh: every language tag has exactly two
# layers whose first is the base's layer, the upper layers carry .wh. whiteouts, and each
# toolchain compiles and runs a hello world in a chroot of its unpacked image.
#
# usage: scripts/check-images.sh [--out DIR] [LANG...]     (root; LANG as in build-images.sh)
set -euo pipefail

OUT=${JUDGEBOX_IMAGE_CACHE:-/var/cache/judgebox/oci}
WANT=()
while [ $# -gt 0 ]; do
  case $1 in
    --out) OUT=$2; shift ;;
    -*) echo "usage: $0 [--out DIR] [LANG...]" >&2; exit 2 ;;
    *) WANT+=("$1") ;;
  esac
  shift
done
[ ${#WANT[@]} -gt 0 ] || WANT=(gcc python3 node java go rust bash)
[ "$(id -u)" = 0 ] || { echo "check-images: run as root" >&2; exit 2; }

fails=0
ok() { echo "check-images: ok   $*"; }
bad() { echo "check-images: FAIL $*" >&2; fails=$((fails + 1)); }
tag_of() { echo "judgebox/$1:bookworm"; }

# Hello-world programs, run as "sh -c" inside the image with a writable /tmp.
declare -A SMOKE=(
  [gcc]='printf "#include <stdio.h>\nint main(void){puts(\"hello\");return 0;}\n" >/tmp/h.c &&
         gcc -O2 -o /tmp/h /tmp/h.c && /tmp/h &&
         printf "#include <iostream>\nint main(){std::cout<<\"hello\"<<std::endl;}\n" >/tmp/h.cc &&
         g++ -O2 -o /tmp/hh /tmp/h.cc && /tmp/hh'
  [python3]='python3 -c "import json, sys; print(json.dumps(\"hello\")[1:-1])"'
  [node]='node -e "console.log(\"hello\")"'
  [java]='mkdir -p /tmp/j && printf "class H{public static void main(String[] a){System.out.println(\"hello\");}}\n" >/tmp/j/H.java &&
          javac -d /tmp/j /tmp/j/H.java && java -cp /tmp/j H'
  [go]='mkdir -p /tmp/g && printf "package main\nimport \"fmt\"\nfunc main(){fmt.Println(\"hello\")}\n" >/tmp/g/h.go &&
        cd /tmp/g && HOME=/tmp GOCACHE=/tmp/go-cache go build -o /tmp/g/h h.go && /tmp/g/h'
  [rust]='printf "fn main(){println!(\"hello\");}\n" >/tmp/h.rs && rustc -O -o /tmp/hr /tmp/h.rs && /tmp/hr'
  [bash]='echo "6*7" | bc && bash -c "echo hello"'
)

manifest() { skopeo inspect --raw "oci:$OUT:$1"; }

base_layer=$(manifest "$(tag_of base)" | jq -r '.layers[0].digest')
[ "$(manifest "$(tag_of base)" | jq '.layers | length')" = 1 ] && ok "base: 1 layer" || bad "base: not 1 layer"

work=$(mktemp -d "$(dirname "$OUT")/.check-images.XXXXXX")
trap 'rm -rf --one-file-system "$work"' EXIT

for lang in "${WANT[@]}"; do
  tag=$(tag_of "$lang")
  m=$(manifest "$tag") || { bad "$lang: no tag $tag"; continue; }
  read -r n first top < <(jq -r '[(.layers | length), .layers[0].digest, .layers[-1].digest] | join(" ")' <<<"$m")
  [ "$n" = 2 ] && [ "$first" = "$base_layer" ] && ok "$lang: 2 layers, first is base's" ||
    bad "$lang: $n layers, first $first (base $base_layer)"
  wh=$(tar -tzf "$OUT/blobs/${top/://}" | grep -c '\.wh\.' || true)
  [ "$wh" -gt 0 ] && ok "$lang: $wh whiteouts in the upper layer" || bad "$lang: no whiteouts in the upper layer"

  umoci unpack --image "$OUT:$tag" "$work/$lang" >/dev/null
  # shellcheck disable=SC2016  # the inner script expands its own arguments
  got=$(unshare --mount --propagation private -- sh -c '
    root=$1; mount -t proc proc "$root/proc"; mount --rbind /dev "$root/dev"
    exec chroot "$root" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp sh -c "$2"
  ' sh "$work/$lang/rootfs" "${SMOKE[$lang]}" 2>&1) && [[ $got == *hello* ]] &&
    ok "$lang: hello world runs" || bad "$lang: smoke test: $got"
  rm -rf --one-file-system "${work:?}/$lang"
done

[ "$fails" = 0 ] || { echo "check-images: $fails failure(s)" >&2; exit 1; }
echo "check-images: all ok"
