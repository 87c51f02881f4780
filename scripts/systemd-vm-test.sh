#!/usr/bin/env bash
# judgebox on a real systemd host: a Debian 13 (trixie: kernel 6.12, systemd 257, cgroup v2
# only) VM booted with systemd as init under QEMU (TCG, no KVM). The disk image is built
# once with debootstrap from the host's own Debian mirror and cached (keyed by its
# inputs); every run boots it with -snapshot (the cache is never written), hands the .deb
# and the test scripts in as a tar on a second disk, and the root autologin on the serial
# console runs scripts/vm-systemd/session.sh in a real login session scope:
#   install the .deb; doctor exits 0; C++ and Python judged from the session scope, from a
#   transient service without Delegate= and from the shipped unit (Delegate=yes), each
#   with every limit enforced by cgroup2 and the MLE / fork-bomb verdicts right;
#   daemon-reload during a run changes nothing; no judgebox cgroup is left.
#
# usage: scripts/systemd-vm-test.sh [--deb PATH] [--timeout SECS] [--keep] [--build-only]
# Exit status: 0 all passed; 1 a check failed or the VM gave no summary; 2 harness error.
set -euo pipefail
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/.." && pwd)
CACHE=${JUDGEBOX_VM_CACHE:-/var/cache/judgebox-vm}
OCI=${JUDGEBOX_IMAGE_CACHE:-/var/cache/judgebox/oci}
SUITE=trixie
# Bump when the image recipe below changes.
RECIPE=1
PKGS=systemd,systemd-sysv,dbus,udev,kmod,linux-image-amd64,libpam-systemd,login,jq,procps
LANG_TAGS="judgebox/gcc:bookworm judgebox/python3:bookworm"
DEB="" TIMEOUT=${VM_TIMEOUT:-900} KEEP=0 BUILD_ONLY=0
VM_MEM=${VM_MEM:-2048M} VM_SMP=${VM_SMP:-2}

log() { printf 'systemd-vm-test: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --deb) [ $# -ge 2 ] || die "--deb needs a path"; DEB=$2; shift ;;
    --timeout) [ $# -ge 2 ] || die "--timeout needs seconds"; TIMEOUT=$2; shift ;;
    --keep) KEEP=1 ;;
    --build-only) BUILD_ONLY=1 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1" ;;
  esac
  shift
done
[[ $TIMEOUT =~ ^[0-9]+$ ]] || die "--timeout must be whole seconds"
[ "$(id -u)" = 0 ] || die "run as root (debootstrap, image import)"
if [ "$(dpkg --print-architecture)" != amd64 ]; then
  log "skipped: the systemd VM test boots an amd64 Debian kernel (host is $(dpkg --print-architecture))"
  exit 0
fi
need=()
for t in debootstrap:debootstrap qemu-system-x86_64:qemu-system-x86 mkfs.ext4:e2fsprogs jq:jq; do
  command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${need[@]}" >/dev/null || die "apt-get install ${need[*]} failed"
fi
TRIPLE=$(rustc -vV 2>/dev/null | sed -n 's/^host: //p')
BIN=$REPO/target/$TRIPLE/release/judgebox
[ -x "$BIN" ] || die "$BIN missing: cargo build --release"
[ -f "$OCI/index.json" ] || die "no language image layout at $OCI: run scripts/build-images.sh gcc python3"

WORK=$(mktemp -d /tmp/judgebox-systemd-vm.XXXXXX)
QEMU_PID="" BUILD_DIR=""
cleanup() {
  local rc=$?
  if [ -n "$QEMU_PID" ] && kill -0 "$QEMU_PID" 2>/dev/null; then
    log "stopping the VM (pid $QEMU_PID)"
    kill -TERM "$QEMU_PID" 2>/dev/null || true
    wait "$QEMU_PID" 2>/dev/null || true
  fi
  if [ -n "$BUILD_DIR" ] && [ -d "$BUILD_DIR" ]; then
    umount -R "$BUILD_DIR/root/proc" "$BUILD_DIR/root/sys" "$BUILD_DIR/root/dev" 2>/dev/null || true
    rm -rf --one-file-system "$BUILD_DIR"
  fi
  if [ "$KEEP" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
now() { date +%s; }
T0=$(now)

# The host's Debian mirror (first deb822 or one-line source of a Debian suite).
mirror() {
  local codes='^(bookworm|trixie|forky|sid|stable|testing|unstable)$'
  {
    for f in /etc/apt/sources.list.d/*.sources; do
      [ -f "$f" ] || continue
      awk 'tolower($1)=="uris:"{u=$2} tolower($1)=="suites:"{for(i=2;i<=NF;i++) print u, $i} /^$/{u=""}' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
      [ -f "$f" ] || continue
      awk '$1=="deb"{i=2; if($i ~ /^\[/){while(i<NF && $i !~ /\]$/) i++; i++} print $i, $(i+1)}' "$f"
    done
  } | awk -v re="$codes" '$2 ~ re {print $1; exit}'
}

# Cache key: recipe, suite, packages, the language images' manifests, the mirror.
MIRROR=${JUDGEBOX_DEBIAN_MIRROR:-$(mirror)}
[ -n "$MIRROR" ] || die "no Debian mirror in the host's apt sources (set JUDGEBOX_DEBIAN_MIRROR)"
manifests=$(jq -c --arg t "$LANG_TAGS" '[.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] as $n | ($t | split(" ") | index($n))) | .digest]' "$OCI/index.json")
KEY=$(printf '%s|%s|%s|%s|%s\n' "$RECIPE" "$SUITE" "$PKGS" "$manifests" "$MIRROR" | sha256sum | cut -c1-16)
IMG_DIR=$CACHE/$SUITE-$KEY

build_image() {
  mkdir -p "$CACHE"
  BUILD_DIR=$(mktemp -d "$CACHE/build.XXXXXX")
  local R=$BUILD_DIR/root t
  t=$(now)
  log "debootstrap $SUITE (minbase + systemd + kernel) from the host's mirror"
  debootstrap --variant=minbase --include="$PKGS" "$SUITE" "$R" "$MIRROR" >"$BUILD_DIR/debootstrap.log" 2>&1 \
    || { tail -n 30 "$BUILD_DIR/debootstrap.log" >&2; die "debootstrap failed"; }
  log "debootstrap took $(($(now) - t)) s"
  echo judgebox-vm >"$R/etc/hostname"
  echo '/dev/vda / ext4 rw,errors=remount-ro 0 1' >"$R/etc/fstab"
  chroot "$R" passwd -d root >/dev/null
  mkdir -p "$R/etc/systemd/system/serial-getty@ttyS0.service.d"
  cat >"$R/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'UNIT'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200 %I vt220
UNIT
  # The login shell on the serial console runs the tests from the payload disk.
  cat >"$R/root/.profile" <<'PROFILE'
if [ "$(tty)" = /dev/ttyS0 ] && [ ! -e /run/vmtest-started ]; then
  : >/run/vmtest-started
  mkdir -p /payload && tar -xf /dev/vdb -C /payload && exec bash /payload/session.sh
  echo "VMTEST-FAIL cannot unpack the payload disk"; systemctl poweroff
fi
PROFILE
  for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer dpkg-db-backup.timer \
    getty@tty1.service systemd-timesyncd.service; do
    ln -sf /dev/null "$R/etc/systemd/system/$u"
  done
  log "importing $LANG_TAGS into the image's store"
  for tag in $LANG_TAGS; do
    JUDGEBOX_ROOT=$R/var/lib/judgebox "$BIN" image import "$OCI" --tag "$tag" >/dev/null \
      || die "judgebox image import $tag failed"
  done
  mkdir -p "$BUILD_DIR/out"
  cp "$R"/boot/vmlinuz-* "$BUILD_DIR/out/vmlinuz"
  cp "$R"/boot/initrd.img-* "$BUILD_DIR/out/initrd"
  rm -rf "$R/var/cache/apt/archives/"*.deb "$R/var/lib/apt/lists/"*
  t=$(now)
  mkfs.ext4 -q -F -L root -d "$R" "$BUILD_DIR/out/disk.img" 4G || die "mkfs.ext4 -d failed"
  log "mkfs.ext4 -d took $(($(now) - t)) s"
  rm -rf "$IMG_DIR"
  mv "$BUILD_DIR/out" "$IMG_DIR"
  rm -rf --one-file-system "$BUILD_DIR"
  BUILD_DIR=""
  # Older images of this suite are outdated inputs: drop them.
  for old in "$CACHE/$SUITE"-*; do [ "$old" = "$IMG_DIR" ] || rm -rf "$old"; done
}

if [ -f "$IMG_DIR/disk.img" ]; then
  log "cached image $IMG_DIR"
else
  mkdir -p "$CACHE"
  exec 9>"$CACHE.lock"
  flock 9
  [ -f "$IMG_DIR/disk.img" ] || build_image
  flock -u 9
  log "image ready after $(($(now) - T0)) s"
fi
[ "$BUILD_ONLY" = 0 ] || exit 0

# ---- payload: the .deb, the scripts, the test programs
if [ -z "$DEB" ]; then
  DEB=$("$REPO/scripts/package.sh" --no-build --out "$WORK/deb") || die "scripts/package.sh failed"
fi
[ -f "$DEB" ] || die "no .deb at $DEB"
P=$WORK/payload
mkdir -p "$P"
cp "$DEB" "$P/judgebox.deb"
cp "$SCRIPT_DIR"/vm-systemd/*.sh "$P/"
cp -r "$SCRIPT_DIR"/vm-systemd/programs "$P/programs"
cp -r "$REPO/tests/examples/aplusb" "$P/aplusb"
tar -C "$P" -cf "$WORK/payload.tar" .

# ---- boot
# One boot runs every test. The emulated guest's own kernel has crashed (a general
# protection fault in its page allocator under systemd's cgroup writes, once in ~15
# boots here, TCG with thread=multi) before the tests finished: that boot proves
# nothing either way, so a boot whose console shows a guest kernel panic and no FAIL
# line is retried once, loudly. A FAIL line, a timeout or a second panic fails the test.
boot() {
  LOGF=$WORK/console-$1.log
  log "booting (TCG, $VM_SMP cpus, $VM_MEM, timeout ${TIMEOUT}s)"
  T1=$(now)
  timeout -s KILL "$TIMEOUT" qemu-system-x86_64 -accel tcg,thread=multi -smp "$VM_SMP" -m "$VM_MEM" \
    -nographic -no-reboot -monitor none -nic none \
    -kernel "$IMG_DIR/vmlinuz" -initrd "$IMG_DIR/initrd" \
    -append "root=/dev/vda rw console=ttyS0 panic=-1 quiet loglevel=3 systemd.show_status=0" \
    -drive "file=$IMG_DIR/disk.img,format=raw,if=virtio,snapshot=on" \
    -drive "file=$WORK/payload.tar,format=raw,if=virtio,readonly=on" \
    </dev/null >"$LOGF" 2>&1 &
  QEMU_PID=$!
  wait "$QEMU_PID" && qrc=0 || qrc=$?
  QEMU_PID=""
  tr -d '\r' <"$LOGF" | grep -E '^(PASS|FAIL|INFO|VMTEST|    \|)' || true
  passed=$(tr -d '\r' <"$LOGF" | grep -c '^PASS ' || true)
  failed=$(tr -d '\r' <"$LOGF" | grep -c '^FAIL ' || true)
  log "VM ran $(($(now) - T1)) s (total $(($(now) - T0)) s): $passed passed, $failed failed"
  console_has '^VMTEST-DONE'
}
# grep -c reads the whole console (grep -q would stop early and fail the pipe under pipefail).
console_has() { tr -d '\r' <"$LOGF" | grep -c -- "$1" >/dev/null; }
guest_panicked() { [ "$failed" = 0 ] && console_has 'Kernel panic - not syncing'; }

if ! boot 1 && guest_panicked; then
  log "the guest kernel panicked before the tests finished (not a test result); its console tail:"
  tr -d '\r' <"$LOGF" | grep -B 30 -A 3 'Kernel panic - not syncing' | tail -n 34 >&2
  log "booting once more"
  boot 2 || true
fi
if ! console_has '^VMTEST-DONE'; then
  log "the VM printed no VMTEST-DONE line (qemu exit $qrc; 137 = killed at the ${TIMEOUT}s timeout); console tail:"
  tr -d '\r' <"$LOGF" | tail -n 40 >&2
  exit 1
fi
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
