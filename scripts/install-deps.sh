#!/usr/bin/env bash
# Installs what judgebox's build, tests and demos need on Debian/Ubuntu (idempotent, quiet).
# Needs root. Rust comes from rustup/cargo already on the machine (checked, not installed).
set -euo pipefail
# debootstrap, umoci, skopeo: scripts/build-images.sh and image tests (docker-registry serves
# a local registry for pull tests).
# python3-venv: the serve tests make a venv with the Judge0 Python SDK and schemathesis.
# postgresql: the cluster tests and benchmark start a throwaway server (initdb as nobody).
pkgs=(gcc libc6-dev busybox-static file iproute2 cpio qemu-system-x86 jq
      debootstrap umoci skopeo docker-registry python3-venv postgresql)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "install-deps: cargo not found; install Rust (rustup) first" >&2; exit 1; }
# cargo-fuzz: scripts/fuzz.sh (and test.sh, which fuzzes every target for 30 s).
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
