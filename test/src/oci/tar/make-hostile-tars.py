#!/usr/bin/env python3
"""Writes the hostile layer tars in testdata/layers/ (run once; the outputs are committed).

Uses Python's tarfile, an encoder independent of tsbuild's own. Usage:
    python3 test/src/oci/tar/make-hostile-tars.py testdata/layers
"""
import io
import os
import sys
import tarfile

OUT = sys.argv[1]
MTIME = 1700000000


def info(name, type_=tarfile.REGTYPE, size=0, linkname="", mode=0o644):
    t = tarfile.TarInfo(name)
    t.type = type_
    t.size = size
    t.linkname = linkname
    t.mode = mode
    t.mtime = MTIME
    t.uname = t.gname = ""
    return t


def write(fname, members, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tf:
        for m in members:
            if isinstance(m, tuple):
                t, data = m
                t.size = len(data)
                tf.addfile(t, io.BytesIO(data))
            else:
                tf.addfile(m)
    with open(os.path.join(OUT, fname), "wb") as f:
        f.write(buf.getvalue())
    return buf.getvalue()


write("dotdot.tar", [(info("ok.txt"), b"fine\n"), (info("../tsbuild-dotdot-probe.txt"), b"escaped\n")])
write("dotdot-inner.tar", [info("a", tarfile.DIRTYPE, mode=0o755), (info("a/../../tsbuild-dotdot-probe.txt"), b"escaped\n")])
write("absolute.tar", [(info("/tsbuild-absolute-probe.txt"), b"absolute\n")])
write(
    "symlink-escape.tar",
    [
        info("esc1", tarfile.SYMTYPE, linkname="../../../../../../../.."),
        (info("esc1/tsbuild-symlink-probe-1.txt"), b"through relative symlink\n"),
        info("esc2", tarfile.SYMTYPE, linkname="/"),
        (info("esc2/tsbuild-symlink-probe-2.txt"), b"through absolute symlink\n"),
    ],
)
write("hardlink-dotdot.tar", [info("h", tarfile.LNKTYPE, linkname="../../../../../../etc/passwd")])
write(
    "hardlink-via-symlink.tar",
    [info("s", tarfile.SYMTYPE, linkname="/etc"), info("h", tarfile.LNKTYPE, linkname="s/passwd")],
)
write(
    "symlink-dir.tar",
    [
        info("usr", tarfile.DIRTYPE, mode=0o755),
        info("usr/lib", tarfile.DIRTYPE, mode=0o755),
        info("lib", tarfile.SYMTYPE, linkname="usr/lib"),
        (info("lib/libx.so"), b"\x7fELF-not-really\n"),
    ],
)
write("whiteout-traversal.tar", [info("sub", tarfile.DIRTYPE, mode=0o755), info("sub/.wh...")])
dev = []
for name, typ, ma, mi in [("null", tarfile.CHRTYPE, 1, 3), ("loop0", tarfile.BLKTYPE, 7, 0)]:
    t = info(name, typ, mode=0o666)
    t.devmajor, t.devminor = ma, mi
    dev.append(t)
dev.append(info("fifo", tarfile.FIFOTYPE, mode=0o600))
write("devices.tar", dev)

# A header announcing 8 GiB - 1 bytes, followed by a few bytes and the end of the file.
t = info("huge.bin")
t.size = 0o77777777777
hdr = t.tobuf(format=tarfile.USTAR_FORMAT)
with open(os.path.join(OUT, "huge-size.tar"), "wb") as f:
    f.write(hdr + b"x" * 512)

data = write("truncated-full.tar", [(info("big.bin"), bytes(range(256)) * 40)])
os.remove(os.path.join(OUT, "truncated-full.tar"))
with open(os.path.join(OUT, "truncated.tar"), "wb") as f:
    f.write(data[:3000])

t = info("safe-looking.txt")
t.pax_headers = {"path": "../../tsbuild-pax-probe.txt"}
write("pax-traversal.tar", [(t, b"pax says otherwise\n")])
