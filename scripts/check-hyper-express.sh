#!/usr/bin/env bash
# Runs the transport contract suite with hyper-express loaded, in a Debian 13 (trixie, glibc 2.41) chroot with Node 24.
#
# Usage (as root): scripts/check-hyper-express.sh [command ...]
#   default command: npx vitest run test/server/transport
#
# The host's glibc may be too old for uWebSockets.js (its binaries need glibc 2.38), so the suite would only ever
# run against node:http there. This builds a minimal trixie root with debootstrap from Debian's package mirror as
# configured on this machine (apt sources; ALLSOURCE_DEBIAN_MIRROR overrides it), puts the checkout's Node 24
# binary and npm into it, runs `npm ci` inside it into its own node_modules (never the host's), bind-mounts the
# checkout read-only with that node_modules over it, and runs the command with hyper-express required to load.
#
# The root is cached under ALLSOURCE_TRIXIE_CACHE (default /var/cache/allsource-trixie): the base system once,
# the dependencies once per hash of package.json + package-lock.json. Every mount is undone on every exit path.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${ALLSOURCE_TRIXIE_CACHE:-/var/cache/allsource-trixie}
suite=trixie
# Bump when the layout of the cached root changes, so an old cache is rebuilt instead of half-used.
layout=1

say() { echo "check-hyper-express: $*" >&2; }

if [ "$(id -u)" != 0 ]; then
  say "needs root (debootstrap, chroot, mount)"
  exit 2
fi
for tool in debootstrap chroot mount umount flock sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || { say "needs $tool"; exit 2; }
done
case "$cache" in
  "$repo" | "$repo"/*) say "the cache must live outside the checkout ($cache)"; exit 2 ;;
esac

host_node="$repo/node_modules/node/bin/node"
if [ ! -x "$host_node" ]; then
  say "no Node 24 at node_modules/node/bin/node: run npm ci first"
  exit 2
fi
host_npm=$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")
if [ ! -f "$host_npm/bin/npm-cli.js" ]; then
  say "cannot find npm's own files (looked in $host_npm)"
  exit 2
fi

# The Debian mirror apt uses here: one-line sources (deb [options] URI suite ...) or deb822 (URIs: ...).
debian_mirror() {
  {
    grep -hsE '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
      awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; break } }'
    grep -hsE '^[[:space:]]*URIs:' /etc/apt/sources.list.d/*.sources | awk '{ for (i = 2; i <= NF; i++) print $i }'
  } | grep -E '/debian/?$' | head -n 1
}
mirror=${ALLSOURCE_DEBIAN_MIRROR:-$(debian_mirror)}
if [ -z "$mirror" ]; then
  say "no Debian mirror found in /etc/apt/sources.list*; set ALLSOURCE_DEBIAN_MIRROR"
  exit 2
fi

mkdir -p "$cache"
# One run at a time per cache: a second CI run on the same machine waits instead of sharing a half-built root.
exec 9>"$cache/lock"
flock 9

root="$cache/root-$suite-$layout"
mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
    umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" 2>/dev/null || say "could not unmount ${mounts[i]}"
  done
  mounts=()
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

bind() { # bind SOURCE TARGET [ro]
  mkdir -p "$2"
  mount --bind "$1" "$2"
  mounts+=("$2")
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}

started=$(date +%s)
if [ ! -f "$root/.allsource-ready" ]; then
  say "building a $suite root (debootstrap --variant=minbase) from $mirror"
  rm -rf "$root.tmp"
  debootstrap --variant=minbase "$suite" "$root.tmp" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
    tail -n 20 "$cache/debootstrap.log" >&2
    say "debootstrap failed (full log: $cache/debootstrap.log)"
    exit 1
  }
  touch "$root.tmp/.allsource-ready"
  rm -rf "$root"
  mv "$root.tmp" "$root"
fi

# Node 24 and npm from the host checkout; refreshed when the checkout's Node changes.
if ! cmp -s "$host_node" "$root/opt/node24/bin/node"; then
  install -D -m 0755 "$host_node" "$root/opt/node24/bin/node"
fi
rm -rf "$root/opt/npm"
cp -a "$host_npm" "$root/opt/npm"
ln -sf ../../npm/bin/npm-cli.js "$root/opt/node24/bin/npm"
ln -sf ../../npm/bin/npx-cli.js "$root/opt/node24/bin/npx"
# Name resolution and the certificates npm trusts here (a proxy's CA included).
cp -L /etc/resolv.conf /etc/hosts "$root/etc/"
cafile=$(npm config get cafile 2>/dev/null || true)
for f in "$cafile" "${NODE_EXTRA_CA_CERTS:-}" /etc/ssl/certs/ca-certificates.crt; do
  if [ -n "$f" ] && [ "$f" != null ] && [ -f "$f" ]; then install -D -m 0644 "$f" "$root$f"; fi
done

chroot_env=(
  PATH=/opt/node24/bin:/usr/local/bin:/usr/bin:/bin
  HOME=/root
  CI="${CI:-1}"
  ALLSOURCE_REQUIRE_HYPER_EXPRESS=1
  npm_config_registry="$(npm config get registry)"
  npm_config_update_notifier=false
  npm_config_fund=false
  npm_config_audit=false
)
if [ -n "$cafile" ] && [ "$cafile" != null ]; then chroot_env+=(npm_config_cafile="$cafile"); fi
for v in NODE_EXTRA_CA_CERTS http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  if [ -n "${!v:-}" ]; then chroot_env+=("$v=${!v}"); fi
done
in_root() { chroot "$root" /usr/bin/env -i "${chroot_env[@]}" "$@"; }

bind /proc "$root/proc"
bind /dev "$root/dev"

# The chroot's own dependencies, installed by Node 24's npm inside it, keyed by the manifest and lockfile.
key=$(cat "$repo/package.json" "$repo/package-lock.json" | sha256sum | cut -c1-16)
deps="/opt/allsource/deps-$key"
if [ ! -f "$root$deps/.ready" ]; then
  say "installing dependencies in the root (npm ci, Node $(in_root node --version))"
  rm -rf "$root$deps"
  mkdir -p "$root$deps"
  cp "$repo/package.json" "$repo/package-lock.json" "$root$deps/"
  # The host's npm cache saves downloading what the host already has.
  host_cache=$(npm config get cache)
  mkdir -p "$host_cache"
  bind "$host_cache" "$root/root/.npm"
  in_root sh -c "cd $deps && npm ci --prefer-offline --no-audit --no-fund" || {
    say "npm ci failed in the root"
    exit 1
  }
  touch "$root$deps/.ready"
  # Older dependency sets are dead weight once a new lockfile is installed.
  for old in "$root"/opt/allsource/deps-*; do
    if [ "$old" != "$root$deps" ]; then rm -rf "$old"; fi
  done
fi
say "root ready after $(($(date +%s) - started)) s"

# The checkout read-only (nothing here may write into it), with the chroot's node_modules over the host's.
mkdir -p "$repo/node_modules"
bind "$repo" "$root/work/repo" ro
bind "$root$deps/node_modules" "$root/work/repo/node_modules"

if [ $# -eq 0 ]; then set -- npx vitest run test/server/transport; fi
say "running in $suite (glibc $(in_root sh -c 'ldd --version 2>/dev/null | head -n 1 | sed "s/.* //"')): $*"
status=0
in_root sh -c 'cd /work/repo && exec "$@"' sh "$@" || status=$?
say "done after $(($(date +%s) - started)) s (exit $status)"
exit "$status"
