#!/usr/bin/env bash
# Makes a Debian bookworm minbase root filesystem in DIR, offline except for the machine's own apt mirror:
#   debootstrap --variant=minbase bookworm DIR <mirror>, the mirror read from the machine's apt sources
#   (/etc/apt/sources.list.d/*.sources URIs, else /etc/apt/sources.list; DEBIAN_MIRROR overrides),
#   then apt lists, apt caches, logs and debootstrap leftovers removed and etc/machine-id emptied.
# Cache: the finished tree is kept as a tarball at
#   ${TSBUILD_TEST_CACHE:-/var/cache/tsbuild-test}/debian-bookworm-minbase.tar
# and unpacked instead of running debootstrap when present. The cache is only a speed-up: a missing or
# unreadable tarball means a fresh debootstrap. TSBUILD_NO_CACHE=1 neither reads nor writes it.
# Idempotent: if DIR already holds a finished rootfs, nothing is done. Needs root (debootstrap, ownership).
# Usage: debian-rootfs.sh DIR
set -euo pipefail

log() { printf 'debian-rootfs: %s\n' "$*" >&2; }
die() { printf 'debian-rootfs: error: %s\n' "$*" >&2; exit 1; }

# Unmounts whatever is still mounted under DIR (debootstrap mounts proc/sys in the target and
# normally unmounts them itself), deepest first, so that a later rm -rf cannot reach the host's files.
umount_under() {
  local abs m
  abs=$(cd "$1" && pwd -P)
  awk -v d="$abs" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    log "unmounting $m"
    umount -l "$m" || true
  done
}

[ $# -eq 1 ] || die "usage: debian-rootfs.sh DIR"
dir=$1
suite=bookworm
cache_dir=${TSBUILD_TEST_CACHE:-/var/cache/tsbuild-test}
cache=$cache_dir/debian-$suite-minbase.tar
tar_opts=(--numeric-owner --xattrs --xattrs-include='*' --acls)

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap and file ownership)"

# === is DIR already done?
if [ -f "$dir/etc/debian_version" ] && [ ! -e "$dir/debootstrap" ] && [ -f "$dir/var/lib/dpkg/status" ]; then
  log "$dir already holds a Debian rootfs ($(cat "$dir/etc/debian_version")); nothing to do"
  exit 0
fi
if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
  if [ -e "$dir/debootstrap" ]; then
    log "$dir holds an unfinished debootstrap; removing it"
    umount_under "$dir"
    rm -rf --one-file-system "$dir"
  else
    die "$dir is not empty and is not a Debian rootfs; refusing to write into it"
  fi
fi
mkdir -p "$dir"

# === from the cache
if [ "${TSBUILD_NO_CACHE:-}" != 1 ] && [ -f "$cache" ]; then
  log "unpacking cached $cache into $dir"
  if tar "${tar_opts[@]}" -xpf "$cache" -C "$dir" && [ -f "$dir/etc/debian_version" ]; then
    log "done (from cache)"
    exit 0
  fi
  log "cache $cache is unreadable; removing it and running debootstrap"
  rm -f "$cache"
  find "$dir" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} +
fi

# === the mirror
mirror_from_sources() {
  # deb822 files: the first URIs of a stanza whose Suites include the suite itself and whose Types include deb
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$suite" '
      function flush() { if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uris != "") { split(uris, u, " "); print u[1]; found = 1; exit } types = suites = uris = "" }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]*#/ { next }
      tolower($1) == "types:"  { $1 = ""; types = $0 }
      tolower($1) == "suites:" { $1 = ""; suites = $0 }
      tolower($1) == "uris:"   { $1 = ""; uris = $0 }
      END { if (!found) flush() }
    ' "$f" | head -n1
  done
  # one-line format: deb [opts] URI SUITE COMPONENTS...
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v suite="$suite" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ } if ($(i + 1) == suite) { print $i; exit } }' "$f"
  done
}
mirror=${DEBIAN_MIRROR:-$(mirror_from_sources | head -n1)}
[ -n "$mirror" ] || die "no apt source for '$suite' found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list (set DEBIAN_MIRROR)"
command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install debootstrap)"

# === debootstrap
log "debootstrap --variant=minbase $suite $dir $mirror (about 30 s)"
if ! debootstrap --variant=minbase "$suite" "$dir" "$mirror" >"$dir.debootstrap.log" 2>&1; then
  umount_under "$dir"
  tail -n 20 "$dir.debootstrap.log" >&2 || true
  [ -f "$dir/debootstrap/debootstrap.log" ] && tail -n 20 "$dir/debootstrap/debootstrap.log" >&2
  die "debootstrap failed (log above; full log in $dir.debootstrap.log)"
fi
rm -f "$dir.debootstrap.log"

# === clean
log "cleaning apt lists, caches, logs; emptying etc/machine-id"
rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/* "$dir"/var/cache/debconf/*-old "$dir"/var/lib/dpkg/*-old
mkdir -p "$dir/var/lib/apt/lists/partial" "$dir/var/cache/apt/archives/partial"
find "$dir/var/log" -type f -delete
rm -rf "$dir/debootstrap" "$dir"/tmp/* "$dir"/var/tmp/*
: > "$dir/etc/machine-id"
chmod 0444 "$dir/etc/machine-id"

# === keep it for next time (write a temp file, then rename: concurrent runs never see half a tarball)
if [ "${TSBUILD_NO_CACHE:-}" != 1 ]; then
  if mkdir -p "$cache_dir" 2>/dev/null; then
    tmp=$(mktemp "$cache.XXXXXX")
    if tar "${tar_opts[@]}" -cf "$tmp" -C "$dir" . ; then
      mv -f "$tmp" "$cache"
      log "cached as $cache ($(du -m "$cache" | cut -f1) MiB)"
    else
      rm -f "$tmp"
      log "warning: could not write the cache $cache (continuing)"
    fi
  else
    log "warning: cannot create $cache_dir; not caching"
  fi
fi
log "done: $(find "$dir" | wc -l) entries"
