import { describe, expect, it } from 'vitest';
import { sha256 } from '../../../../src/oci/digest.js';
import type { Image } from '../../../../src/oci/image.js';
import { MediaTypes } from '../../../../src/oci/media-types.js';
import { appendLayers } from '../../../../src/oci/mutate.js';
import { emptyImage } from '../../../../src/oci/empty.js';
import { layerFromCore } from '../../../../src/oci/partial.js';
import { TarWriter } from '../../../../src/oci/tar/writer.js';
import type { TarEntry } from '../../../../src/oci/tar/entry.js';
import { readAll, readableFrom } from '../../../../src/util/streams.js';
import { apkPackages, dpkgPackages, parseOsRelease, purl, scanImage } from '../../../../src/sign/sbom/packages.js';
import { cyclonedxDocument, spdxDocument } from '../../../../src/sign/sbom/formats.js';
import { cleanPath } from '../../../../src/sign/sbom/image-files.js';

type Item = { path: string; type?: TarEntry['type']; data?: string; linkname?: string };

async function tarLayer(items: Item[]): Promise<Buffer> {
  const w = new TarWriter();
  const out = readAll(w.stream);
  for (const it of items) {
    const data = Buffer.from(it.data ?? '');
    const type = it.type ?? 'file';
    await w.add(
      { path: it.path, type, mode: type === 'dir' ? 0o755 : 0o644, uid: 0, gid: 0, size: type === 'file' ? data.length : 0, mtime: 0, ...(it.linkname ? { linkname: it.linkname } : {}) },
      type === 'file' ? data : undefined,
    );
  }
  await w.finish();
  return out;
}

async function imageOf(...layers: Item[][]): Promise<Image> {
  let img = emptyImage();
  for (const items of layers) {
    const bytes = await tarLayer(items);
    const d = sha256(bytes);
    const layer = layerFromCore({ digest: async () => d, size: async () => bytes.length, mediaType: async () => MediaTypes.OciLayer, compressed: async () => readableFrom(bytes) }, d);
    img = appendLayers(img, { layer });
  }
  return img;
}

const STATUS = `Package: bash
Status: install ok installed
Priority: required
Architecture: amd64
Multi-Arch: foreign
Maintainer: Matthias Klose <doko@debian.org>
Version: 5.2.15-2+b2
Description: GNU Bourne Again SHell
 Bash is an sh-compatible command language interpreter.

Package: libc6
Status: install ok installed
Architecture: amd64
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries

Package: removed-pkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: perl-base
Status: install ok installed
Architecture: amd64
Source: perl (5.36.0-7+deb12u1)
Version: 1:5.36.0-7+deb12u1
`;

const OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n';

describe('package databases', () => {
  it('parses dpkg status: installed packages only, source and epoch, purls like trivy', () => {
    const os = parseOsRelease(OS_RELEASE)!;
    expect(os).toEqual({ id: 'debian', versionId: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)', versionCodename: 'bookworm' });
    const pkgs = dpkgPackages(STATUS, os);
    expect(pkgs.map((p) => `${p.name} ${p.version}`)).toEqual(['bash 5.2.15-2+b2', 'libc6 2.36-9+deb12u4', 'perl-base 1:5.36.0-7+deb12u1']);
    expect(pkgs[0]!.purl).toBe('pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12');
    expect(pkgs[0]!.description).toBe('GNU Bourne Again SHell');
    expect(pkgs[1]!.source).toBe('glibc');
    expect(pkgs[2]!.purl).toBe('pkg:deb/debian/perl-base@5.36.0-7%2Bdeb12u1?arch=amd64&distro=debian-12&epoch=1');
    expect(pkgs[2]!.sourceVersion).toBe('5.36.0-7+deb12u1');
  });

  it('parses apk installed', () => {
    const db = 'C:Q1abc=\nP:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\nT:the musl c library\n\nP:busybox\nV:1.36.1-r5\nA:x86_64\nL:GPL-2.0-only\n';
    const pkgs = apkPackages(db, { id: 'alpine', versionId: '3.18.4' });
    expect(pkgs.map((p) => p.purl)).toEqual(['pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=3.18.4', 'pkg:apk/alpine/busybox@1.36.1-r5?arch=x86_64&distro=3.18.4']);
    expect(pkgs[0]!.license).toBe('MIT');
  });

  it('encodes purl segments and sorts qualifiers', () => {
    expect(purl('deb', 'debian', 'libstdc++6', '12.2.0-14', { distro: 'debian-12', arch: 'amd64' })).toBe('pkg:deb/debian/libstdc%2B%2B6@12.2.0-14?arch=amd64&distro=debian-12');
  });
});

describe('scanImage', () => {
  it('cleans tar paths without leaving the root', () => {
    expect(cleanPath('./a//b/../c/')).toBe('a/c');
    expect(cleanPath('/../../etc/os-release')).toBe('etc/os-release');
  });

  it('reads the databases across layers: last layer wins, whiteouts and opaque dirs apply, os-release symlink resolves', async () => {
    const img = await imageOf(
      [
        { path: 'usr/lib/os-release', data: OS_RELEASE },
        { path: 'etc/debian_version', data: '12.5\n' },
        { path: 'etc/os-release', type: 'symlink', linkname: '../usr/lib/os-release' },
        { path: 'var/lib/dpkg/status', data: 'Package: old\nStatus: install ok installed\nVersion: 1\n' },
        { path: 'var/lib/dpkg/status.d/gone', data: 'Package: gone\nVersion: 1\n' },
        { path: 'lib/apk/db/installed', data: 'P:apkpkg\nV:1\n' },
      ],
      [
        { path: 'var/lib/dpkg/status', data: STATUS },
        { path: 'var/lib/dpkg/status.d/.wh..wh..opq', data: '' },
        { path: 'var/lib/dpkg/status.d/distroless', data: 'Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n' },
        { path: 'var/lib/dpkg/status.d/distroless.md5sums', data: 'x  y\n' },
        { path: 'lib/apk/db/.wh.installed', data: '' },
      ],
    );
    const inv = await scanImage(img);
    expect(inv.os?.id).toBe('debian');
    expect(inv.os?.versionId).toBe('12');
    expect(inv.os?.release).toBe('12.5');
    expect(inv.packages.map((p) => p.name)).toEqual(['bash', 'libc6', 'perl-base', 'tzdata']);
    expect(inv.packages[0]!.purl).toBe('pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12.5');
  });

  it('gives an empty inventory for an image without databases', async () => {
    const inv = await scanImage(await imageOf([{ path: 'bin/busybox', data: 'x' }]));
    expect(inv).toEqual({ packages: [] });
  });

  it('writes SPDX 2.3 and CycloneDX 1.5 documents with purls', async () => {
    const os = parseOsRelease(OS_RELEASE)!;
    const inv = { os, packages: dpkgPackages(STATUS, os) };
    const created = new Date('2024-01-01T00:00:00Z');
    const spdx = spdxDocument(inv, { name: 'demo/app:v1', digest: sha256('x'), created }) as { spdxVersion: string; packages: { name: string; SPDXID: string; externalRefs?: { referenceLocator: string }[] }[]; relationships: unknown[]; creationInfo: { created: string } };
    expect(spdx.spdxVersion).toBe('SPDX-2.3');
    expect(spdx.creationInfo.created).toBe('2024-01-01T00:00:00Z');
    expect(spdx.packages.map((p) => p.name)).toEqual(['demo/app:v1', 'debian', 'bash', 'libc6', 'perl-base']);
    for (const p of spdx.packages) expect(p.SPDXID).toMatch(/^SPDXRef-[A-Za-z0-9.-]+$/);
    expect(new Set(spdx.packages.map((p) => p.SPDXID)).size).toBe(spdx.packages.length);
    expect(spdx.packages[2]!.externalRefs![0]!.referenceLocator).toBe('pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12');
    expect(spdx.relationships).toHaveLength(5);
    const cdx = cyclonedxDocument(inv, { name: 'demo/app:v1', digest: sha256('x'), created }) as { bomFormat: string; specVersion: string; components: { type: string; purl?: string }[] };
    expect(cdx.bomFormat).toBe('CycloneDX');
    expect(cdx.specVersion).toBe('1.5');
    expect(cdx.components[0]!.type).toBe('operating-system');
    expect(cdx.components.slice(1).map((c) => c.purl)).toEqual(inv.packages.map((p) => p.purl));
    // Same input, same document (stable serial number and namespace).
    expect(JSON.stringify(spdxDocument(inv, { name: 'demo/app:v1', digest: sha256('x'), created }))).toBe(JSON.stringify(spdx));
  });
});
