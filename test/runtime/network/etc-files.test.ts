import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_HOSTS, hostsContent, resolvConfContent, rewriteInPlace, withPeers } from '../../../runtime/network/etc-files.js';

describe('network/etc-files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsbuild-etcfiles-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('resolv.conf: loopback nameservers dropped (docker falls back to 8.8.8.8/8.8.4.4), kept verbatim with host networking or none', () => {
    const host = '# generated\nnameserver 127.0.0.53\nsearch lan\noptions edns0\n';
    expect(resolvConfContent(host)).toBe('# generated\nsearch lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\noptions edns0\n');
    expect(resolvConfContent(host, { hostNetwork: true })).toBe(host);
    expect(resolvConfContent(host, { hostNetwork: true, options: ['ndots:1'] })).toBe('# generated\nsearch lan\nnameserver 127.0.0.53\noptions ndots:1\n');
    expect(resolvConfContent('nameserver 10.0.0.2\nnameserver ::1\ndomain corp\n')).toBe('search corp\nnameserver 10.0.0.2\n');
  });

  it('resolv.conf: --dns, --dns-search, --dns-option replace the host\'s; search "." clears the list', () => {
    const host = 'nameserver 10.0.0.2\nsearch lan\noptions edns0\n';
    expect(resolvConfContent(host, { servers: ['1.1.1.1', '9.9.9.9'], search: ['a.test', 'b.test'], options: ['ndots:2', 'timeout:1'] }))
      .toBe('search a.test b.test\nnameserver 1.1.1.1\nnameserver 9.9.9.9\noptions ndots:2 timeout:1\n');
    expect(resolvConfContent(host, { search: ['.'] })).toBe('nameserver 10.0.0.2\noptions edns0\n');
  });

  it('hosts: defaults, --add-host lines, then the container (hostname.domain hostname)', () => {
    expect(hostsContent({ hostname: 'h', address: '10.0.0.5', domainname: 'example.org', extraHosts: [{ name: 'gw', ip: '10.0.0.1' }] }))
      .toBe(`${DEFAULT_HOSTS}10.0.0.1\tgw\n10.0.0.5\th.example.org h\n`);
    expect(hostsContent({ hostname: 'h', hostHosts: '127.0.0.1 localhost' })).toBe('127.0.0.1 localhost\n');
  });

  it('peer section: replaced as a whole, dropped when the network is empty, the rest of the file kept', () => {
    const base = `${DEFAULT_HOSTS}10.0.0.5\th\n`;
    const one = withPeers(base, 'net', [{ id: 'a'.repeat(64), address: '10.0.0.6', names: ['web', 'www', 'web'] }]);
    expect(one).toBe(`${base}# tsbuild network peers (rewritten on every start and stop of a container of the network)\n10.0.0.6\tweb www\t# net aaaaaaaaaaaa\n`);
    const two = withPeers(`${one}`, 'net', [{ id: 'b'.repeat(64), address: '10.0.0.7', names: ['db'] }]);
    expect(two).not.toContain('web');
    expect(two).toContain('10.0.0.7\tdb\t# net bbbbbbbbbbbb\n');
    expect(withPeers(two, 'net', [])).toBe(base);
  });

  it('rewriteInPlace keeps the inode (bind mounts of the file see the change) and truncates', async () => {
    const f = join(dir, 'hosts');
    writeFileSync(f, 'x'.repeat(500));
    const ino = statSync(f).ino;
    await rewriteInPlace(f, 'short\n');
    expect(readFileSync(f, 'utf8')).toBe('short\n');
    expect(statSync(f).ino).toBe(ino);
  });
});
