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
# DEBIAN_MIRROR (default: the Debian mirror apt already uses, see debian_mirror below; the
# script stops, saying so, when apt has none), DOCKYARD_APT_DIR (where apt's sources are
# read, default /etc/apt). `--print-mirror` prints the mirror it would use and exits.
set -euo pipefail

IMAGE="${DOCKYARD_BASE_IMAGE_NAME:-dockyard-test/python:3.11}"
SUITE=bookworm
PACKAGES=python3,python3-pip,python3-venv,python-is-python3
CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt
APT_DIR="${DOCKYARD_APT_DIR:-/etc/apt}"

say() { printf 'build-base-image: %s\n' "$*" >&2; }

# An entry of apt's sources is a Debian mirror when it is a binary (`deb`) source of the
# `main` component whose URI is a Debian archive: its path ends in /debian (or is a
# snapshot of one). That leaves out debian-security, Ubuntu and third-party repositories
# (Docker's, NodeSource's, ...), which cannot debootstrap Debian. A `mirror+file:` URI
# names a list of mirrors: its first one is taken.
AWK_DEBIAN_URI='
  function debian(uri,   path, line, parts) {
    if (uri ~ /^mirror\+file:/) {
      path = uri; sub(/^mirror\+file:(\/\/)?/, "", path)
      while ((getline line < path) > 0) {
        if (line ~ /^[ \t]*(#|$)/) continue
        split(line, parts, /[ \t]+/); uri = parts[1]; break
      }
      close(path)
    }
    if (uri !~ /^(https?|ftp|file):/) return ""
    sub(/\/+$/, "", uri)
    return (uri ~ /\/debian(\/[0-9]+T[0-9]+Z)?$/) ? uri : ""
  }
'

# One-line format: deb [ options ] URI SUITE COMPONENT...
sources_list_mirror() {
  awk "$AWK_DEBIAN_URI"'
    $1 != "deb" { next }
    {
      sub(/#.*/, ""); i = 2
      if ($i ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
      main = 0
      for (c = i + 2; c <= NF; c++) if ($c == "main") main = 1
      if (main && (uri = debian($i)) != "") { print uri; exit }
    }' "$1"
}

# deb822 format: stanzas of "Field: value" lines (continued on indented lines).
deb822_mirror() {
  awk "$AWK_DEBIAN_URI"'
    function flush(   n, i, uri, list) {
      if (!done && enabled != "no" && (" " types " ") ~ /[ \t]deb[ \t]/ && (" " comps " ") ~ /[ \t]main[ \t]/) {
        n = split(uris, list, /[ \t]+/)
        for (i = 1; i <= n; i++) if ((uri = debian(list[i])) != "") { print uri; done = 1; break }
      }
      types = uris = comps = field = ""; enabled = "yes"
    }
    /^#/ { next }
    /^[ \t]*$/ { flush(); next }
    /^[ \t]/ { if (field == "uris") uris = uris " " $0; next }
    {
      field = tolower(substr($0, 1, index($0, ":") - 1)); value = substr($0, index($0, ":") + 1)
      if (field == "types") types = value
      else if (field == "uris") uris = value
      else if (field == "components") comps = value
      else if (field == "enabled") enabled = tolower(value)
      gsub(/[ \t]/, "", enabled)
    }
    END { flush() }' "$1"
}

# The mirror apt already uses: its sources in apt's own order, sources.list first.
apt_mirror() {
  local file found
  for file in "$APT_DIR/sources.list" "$APT_DIR"/sources.list.d/*; do
    [ -f "$file" ] || continue
    case "$file" in
      *.sources) found=$(deb822_mirror "$file") ;;
      */sources.list | *.list) found=$(sources_list_mirror "$file") ;;
      *) continue ;;  # apt ignores other names too (*.save, *.disabled, ...)
    esac
    if [ -n "$found" ]; then
      echo "$found"
      return 0
    fi
  done
  return 1
}

debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then
    echo "$DEBIAN_MIRROR"
  elif ! apt_mirror; then
    say "no Debian mirror found in apt's sources ($APT_DIR/sources.list," \
      "$APT_DIR/sources.list.d/*.list and *.sources)"
    say "set DEBIAN_MIRROR to the URL of a Debian mirror this machine can reach" \
      "(one serving dists/$SUITE/): DEBIAN_MIRROR=URL $0"
    return 1
  fi
}

FORCE=""
case "${1:-}" in
  --print-mirror)
    debian_mirror
    exit
    ;;
  --force) FORCE=1 ;;
  "") ;;
  *)
    say "unknown argument '$1'; usage: $0 [--force | --print-mirror]"
    exit 2
    ;;
esac

if ! docker info >/dev/null 2>&1; then
  say "Docker is not running (docker info failed); start dockerd first"
  exit 1
fi

if [ -z "$FORCE" ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
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

MIRROR=$(debian_mirror) || exit 1

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
