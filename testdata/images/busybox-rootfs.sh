#!/usr/bin/env bash
# Makes a minimal busybox root filesystem in DIR, offline, from Debian's busybox-static:
#   bin/busybox (static), one symlink per applet in bin/ (-> /bin/busybox, as `busybox --install -s /bin`
#   makes them), plus the applets' canonical links in sbin/, usr/bin/, usr/sbin/ (like the busybox image),
#   etc/{passwd,group,shadow,hostname,hosts?}, tmp (1777), root (0700), dev, proc, sys, var, home.
# Deterministic: same busybox-static package -> same tree; every mtime is SOURCE_DATE_EPOCH (default 0).
# Idempotent: DIR may be absent, empty, or a rootfs this script made before (it is then remade in place).
# The applet links are made with ln instead of `chroot DIR busybox --install`, so no privileges are needed;
# the result is the same set of absolute links.
# Usage: busybox-rootfs.sh DIR
set -euo pipefail

log() { printf 'busybox-rootfs: %s\n' "$*" >&2; }
die() { printf 'busybox-rootfs: error: %s\n' "$*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: busybox-rootfs.sh DIR"
dir=$1
busybox=${BUSYBOX:-/bin/busybox}
epoch=${SOURCE_DATE_EPOCH:-0}

[ -x "$busybox" ] || die "$busybox not found (apt-get install busybox-static)"
# A dynamically linked busybox would not run inside the rootfs.
if command -v file >/dev/null 2>&1 && ! file -L "$busybox" | grep -q 'statically linked'; then
  die "$busybox is not statically linked (install busybox-static, not busybox)"
fi
if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ] && [ ! -f "$dir/bin/busybox" ]; then
  die "$dir is not empty and is not a busybox rootfs; refusing to write into it"
fi

log "making busybox rootfs in $dir from $busybox ($("$busybox" 2>/dev/null | head -n1 | cut -d' ' -f1-2 || true))"
umask 022
mkdir -p "$dir"
cd "$dir"
mkdir -p bin sbin usr/bin usr/sbin etc dev proc sys var/spool/mail home root tmp
chmod 0755 bin sbin usr usr/bin usr/sbin etc dev proc sys var var/spool var/spool/mail home
chmod 0700 root
chmod 1777 tmp

rm -f bin/busybox
cp "$busybox" bin/busybox
chmod 0755 bin/busybox

# === applet links: every applet in /bin, and at its canonical path
n=0
while IFS= read -r path; do
  name=${path##*/}
  case "$path" in linuxrc|*/busybox) continue ;; esac
  [ "bin/$name" = bin/busybox ] || ln -sfn /bin/busybox "bin/$name"
  case "$path" in
    bin/*) ;;
    sbin/*|usr/bin/*|usr/sbin/*) ln -sfn /bin/busybox "$path" ;;
    *) die "unexpected applet path $path" ;;
  esac
  n=$((n + 1))
done < <("$busybox" --list-full | LC_ALL=C sort)
log "linked $n applets"

# === accounts
cat > etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
PASSWD
cat > etc/group <<'GROUP'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
wheel:x:10:root
www-data:x:33:
users:x:100:
nogroup:x:65534:
GROUP
cat > etc/shadow <<'SHADOW'
root:*::0:::::
daemon:*::0:::::
bin:*::0:::::
sys:*::0:::::
www-data:*::0:::::
nobody:*::0:::::
SHADOW
chmod 0644 etc/passwd etc/group
chmod 0640 etc/shadow
printf 'localhost\n' > etc/hostname
chmod 0644 etc/hostname

# === deterministic metadata
if [ "$(id -u)" = 0 ]; then chown -hR 0:0 .; fi
find . -exec touch -h -d "@$epoch" {} +
log "done: $(find . | wc -l) entries, $(du -sk . | cut -f1) KiB"
