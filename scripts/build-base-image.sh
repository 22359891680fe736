#!/usr/bin/env bash
# Build a Python base image without any registry: dockyard-test/python:3.11.
#
# For machines that cannot pull `python:3.11-slim` (no registry reachable) but can reach a
# Debian package mirror. It makes a minimal Debian bookworm root filesystem with debootstrap
# (python3, pip, venv and `python` as a name for python3: Debian 12's Python is 3.11, hence
# the tag), makes pip install into the system interpreter as the official python images do,
# adds this host's CA bundle so pip inside `docker build` verifies the package index, and
# imports the result into Docker. Then:
#
#     export DOCKYARD_BASE_IMAGE=dockyard-test/python:3.11
#
# and `flow.deploy(image=...)` builds on it. Idempotent: an existing image is reused
# (`--force` builds it again). Needs root (debootstrap), Docker, and about 45 s.
#
# Environment: DOCKYARD_BASE_IMAGE_NAME (the image, default dockyard-test/python:3.11),
# DEBIAN_MIRROR (default: the first Debian URI of apt's sources, else deb.debian.org).
set -euo pipefail

IMAGE="${DOCKYARD_BASE_IMAGE_NAME:-dockyard-test/python:3.11}"
SUITE=bookworm
PACKAGES=python3,python3-pip,python3-venv,python-is-python3
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt

say() { printf 'build-base-image: %s\n' "$*" >&2; }

if ! docker info >/dev/null 2>&1; then
  say "Docker is not running (docker info failed); start dockerd first"
  exit 1
fi

if [ "${1:-}" != "--force" ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  say "$IMAGE already exists (pass --force to build it again)"
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  say "debootstrap needs root: run this script as root (sudo $0)"
  exit 1
fi

if ! command -v debootstrap >/dev/null; then
  say "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
fi

# The mirror apt already uses: deb822 sources first, then the one-line format.
apt_mirror() {
  local found=""
  if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
    found=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' \
      /etc/apt/sources.list.d/*.sources | grep -v -- '-security' | head -n 1 || true)
  fi
  if [ -z "$found" ] && [ -f /etc/apt/sources.list ]; then
    found=$(awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }' \
      /etc/apt/sources.list | grep -v -- '-security' | head -n 1 || true)
  fi
  echo "${found:-http://deb.debian.org/debian}"
}
MIRROR="${DEBIAN_MIRROR:-$(apt_mirror)}"

ROOT=$(mktemp -d /tmp/dockyard-rootfs.XXXXXX)
cleanup() {
  # debootstrap mounts /proc and /sys inside the target: never delete through a mount
  local mounted
  mounted=$(awk -v root="$ROOT" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r)
  for point in $mounted; do umount -l "$point" 2>/dev/null || true; done
  rm -rf --one-file-system "$ROOT"
}
trap cleanup EXIT

say "debootstrap $SUITE from $MIRROR into $ROOT (about 45 s)"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1 || {
  tail -n 30 "$ROOT.log" >&2
  rm -f "$ROOT.log"
  say "debootstrap failed (see above)"
  exit 1
}
rm -f "$ROOT.log"

# pip installs into the system interpreter, as in the official python images
rm -f "$ROOT"/usr/lib/python3*/EXTERNALLY-MANAGED
# pip inside builds verifies the package index with this host's CAs
if [ -f "$CA_BUNDLE" ]; then
  install -D -m 0644 "$CA_BUNDLE" "$ROOT$CA_BUNDLE"
else
  say "warning: $CA_BUNDLE not found; pip inside builds may not verify the package index"
fi
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/* "$ROOT"/tmp/*

say "importing it as $IMAGE"
tar -C "$ROOT" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change "ENV SSL_CERT_FILE=$CA_BUNDLE" \
  --change 'ENV PIP_ROOT_USER_ACTION=ignore' \
  --change 'ENV PIP_DISABLE_PIP_VERSION_CHECK=1' \
  --change 'CMD ["python3"]' \
  - "$IMAGE" >/dev/null
say "built $IMAGE; use it with: export DOCKYARD_BASE_IMAGE=$IMAGE"
