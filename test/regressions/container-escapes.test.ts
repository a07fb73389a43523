/**
 * Container-escape and isolation regressions: each test attempts a known escape from inside a
 * `tsbuild run` container and, where it applies, a build's RUN step, and must fail to escape.
 * The classes follow the runc/Docker CVEs they are named after; tests that need a control
 * (the attempt succeeding without the protection) include it, so none can pass vacuously.
 * (CVE-2021-30465, symlinked mount targets, lives with the volume tests.)
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxRootfs } from '../helpers/base-images.js';
import { firstReason, needBuiltCli, needOverlay, needRoot } from '../helpers/capabilities.js';
import { REPO_ROOT, runTsbuild, tsbuildOk } from '../helpers/tools.js';

const PROBE = join(REPO_ROOT, 'native', 'build', 'test-init');
const HELPER = join(REPO_ROOT, 'native', 'build', 'tsbuild-helper');
const why = firstReason(needRoot(), needOverlay(), needBuiltCli(), existsSync(PROBE) ? undefined : `${PROBE} is missing (npm run build)`);
if (why) console.warn(`skip: ${why}`);

const temps: string[] = [];
function tmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}
const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

let root = '';
let marker = '';
const BASE = 'localhost/escape/busybox:1';
const PROBED = 'localhost/escape/probe:1';

beforeAll(async () => {
  if (why) return;
  root = tmp('tsbuild-escape-');
  // a directory that exists on the host only: seeing it from inside means an escape
  marker = tmp('tsbuild-escape-host-marker-');
  await tsbuildOk(['import', await busyboxRootfs(), BASE, '-c', 'CMD ["sh"]'], { root });
  const ctx = tmp('tsbuild-escape-ctx-');
  copyFileSync(PROBE, join(ctx, 'test-init'));
  writeFileSync(join(ctx, 'Dockerfile'), [
    `FROM ${BASE}`,
    'COPY test-init /bin/test-init',
    // a setuid-root probe and a file only root may read, for the no_new_privs test
    'RUN cp /bin/test-init /suid-probe && chmod 4755 /suid-probe && echo root-only > /root-only && chmod 600 /root-only',
    '',
  ].join('\n'));
  await tsbuildOk(['build', '-q', '-t', PROBED, ctx], { root });
}, 180_000);

afterAll(() => {
  for (const t of temps) rmSync(t, { recursive: true, force: true });
});

/** Lines a RUN step printed (plain progress: `#N 0.123 text`), without the echoed instructions. */
function stepOutput(out: string): string[] {
  return [...out.matchAll(/^#\d+ \d+\.\d+ (.*)$/gm)].map((m) => m[1]!);
}

/** Builds a one-step Dockerfile on the probe image; returns the build's result and output. */
async function buildStep(lines: string[], extra: string[] = []) {
  const ctx = tmp('tsbuild-escape-step-');
  writeFileSync(join(ctx, 'Dockerfile'), [`FROM ${PROBED}`, ...lines, ''].join('\n'));
  return runTsbuild(['build', '--no-cache', '--progress', 'plain', ...extra, ctx], { root });
}

describe.skipIf(!!why)('container escapes', () => {
  it('CVE-2019-5736 class: a container writing to /proc/<pid>/exe of every process while tsbuild exec runs cannot change the runtime', async () => {
    const before = { helper: sha(HELPER), helperMtime: statSync(HELPER).mtimeMs, node: sha(process.execPath) };
    const name = `escape-5736-${process.pid}`;
    // root in the container tries, in a tight loop, to open every visible /proc/*/exe for writing
    const loop = 'while :; do for e in /proc/[0-9]*/exe; do (echo pwned >> "$e") 2>/dev/null && echo "WROTE $e" >> /tmp/wrote; done; done';
    await tsbuildOk(['run', '-d', '--name', name, PROBED, 'sh', '-c', loop], { root });
    try {
      for (let i = 0; i < 8; i++) await tsbuildOk(['exec', name, 'sh', '-c', 'sleep 0.1; true'], { root });
      const wrote = await runTsbuild(['exec', name, 'sh', '-c', 'cat /tmp/wrote 2>/dev/null; true'], { root });
      // what it may write to is its own processes' binaries (busybox in its rootfs), never the host's
      for (const line of wrote.stdout.split('\n').filter(Boolean)) expect(line).toMatch(/^WROTE \/proc\/\d+\/exe$/);
    } finally {
      await runTsbuild(['rm', '-f', name], { root });
    }
    for (const bin of [HELPER, process.execPath]) expect(readFileSync(bin).includes('pwned'), `${bin} was written to`).toBe(false);
    // (a rebuild of the helper by `npm run build` meanwhile changes it legitimately: compare only if untouched)
    if (statSync(HELPER).mtimeMs === before.helperMtime) expect(sha(HELPER), 'the helper binary changed').toBe(before.helper);
    expect(sha(process.execPath), 'the node binary changed').toBe(before.node);
  }, 120_000);

  it('CVE-2024-21626 class: a working directory of /proc/self/fd/N never reaches the host (run -w and RUN under WORKDIR)', async () => {
    const probe = `cd ../../../../../../..; ls ${marker.replace(/^\//, '')} >/dev/null 2>&1 && echo ESCAPED || echo contained`;
    for (const n of [3, 4, 5, 6, 7, 8]) {
      const r = await runTsbuild(['run', '--rm', '-w', `/proc/self/fd/${n}`, PROBED, 'sh', '-c', probe], { root });
      // either refused (no such fd inside, or not a directory) or contained; never the host
      expect(r.stdout, `run -w /proc/self/fd/${n}`).not.toContain('ESCAPED');
      if (r.code === 0) expect(r.stdout.trim()).toBe('contained');
    }
    for (const n of [3, 5, 7]) {
      const b = await buildStep([`WORKDIR /proc/self/fd/${n}`, `RUN ${probe}`]);
      expect(stepOutput(b.stdout + b.stderr), `RUN under WORKDIR /proc/self/fd/${n}`).not.toContain('ESCAPED');
      if (b.code === 0) expect(stepOutput(b.stdout + b.stderr)).toContain('contained');
    }
  }, 180_000);

  it('masked and read-only /proc and /sys paths stay so (run and RUN)', async () => {
    const script = [
      'echo h > /proc/sysrq-trigger 2>/dev/null && echo SYSRQ-WROTE',
      'echo 1 > /proc/sys/kernel/sysrq 2>/dev/null && echo SYSCTL-WROTE',
      'echo /tmp/x > /sys/kernel/uevent_helper 2>/dev/null && echo SYS-WROTE',
      'test -s /proc/kcore && echo KCORE-READABLE',
      'head -c1 /proc/keys 2>/dev/null | grep -q . && echo KEYS-READABLE',
      'echo checked',
    ].join('; ');
    const r = await tsbuildOk(['run', '--rm', PROBED, 'sh', '-c', script], { root });
    expect(r.stdout.trim()).toBe('checked');
    const b = await buildStep([`RUN (${script}) > /result 2>/dev/null`, 'RUN cat /result']);
    expect(b.code, b.stderr).toBe(0);
    expect(stepOutput(b.stderr)).toEqual(['checked']);
  }, 120_000);

  it('mount, unshare(CLONE_NEWUSER), keyctl, add_key, bpf, kexec_load are denied (run and RUN); --privileged is the control', async () => {
    const probes = ['mount', 'unshare-user', 'keyctl', 'add_key', 'bpf', 'kexec_load'];
    const args = probes.flatMap((p) => ['syscall', p]);
    const r = await tsbuildOk(['run', '--rm', PROBED, '/bin/test-init', ...args], { root });
    for (const p of probes) expect(r.stdout, p).toMatch(new RegExp(`^${p} (EPERM|EACCES|ENOSYS)$`, 'm'));
    const b = await buildStep([`RUN /bin/test-init ${args.join(' ')} > /r && cat /r`]);
    expect(b.code, b.stderr).toBe(0);
    const stepLines = stepOutput(b.stdout + b.stderr);
    for (const p of probes) expect(stepLines.some((l) => new RegExp(`^${p} (EPERM|EACCES|ENOSYS)$`).test(l)), `RUN ${p}: ${stepLines.join(' | ')}`).toBe(true);
    // control: with --privileged mount succeeds, so the probe really tries
    const ctl = await tsbuildOk(['run', '--rm', '--privileged', PROBED, '/bin/test-init', 'syscall', 'mount'], { root });
    expect(ctl.stdout).toMatch(/^mount OK$/m);
  }, 120_000);

  it('another container is out of reach: no shared pid namespace, no signal, no ptrace target', async () => {
    const name = `escape-victim-${process.pid}`;
    await tsbuildOk(['run', '-d', '--name', name, PROBED, 'sleep', '60'], { root });
    try {
      const insp = JSON.parse((await tsbuildOk(['container', 'inspect', name], { root })).stdout) as { State: { Pid: number } }[];
      const hostPid = insp[0]!.State.Pid;
      expect(hostPid).toBeGreaterThan(1);
      const r = await tsbuildOk(['run', '--rm', PROBED, 'sh', '-c', `ls /proc | grep -c '^[0-9]'; kill -0 ${hostPid} 2>/dev/null && echo SIGNALLED; test -e /proc/${hostPid}/mem && cat /proc/${hostPid}/cmdline 2>/dev/null | grep -q sleep && echo SEEN; echo done`], { root });
      const lines = r.stdout.trim().split('\n');
      expect(Number(lines[0])).toBeLessThan(8);
      expect(r.stdout).not.toMatch(/SIGNALLED|SEEN/);
      expect(lines.at(-1)).toBe('done');
    } finally {
      await runTsbuild(['rm', '-f', name], { root });
    }
  }, 120_000);

  it('setuid escalation is blocked by no-new-privileges (the control without it escalates)', async () => {
    const nnp = await tsbuildOk(['run', '--rm', '-u', '1000:1000', '--security-opt', 'no-new-privileges', PROBED, '/suid-probe', 'read', '/root-only'], { root });
    expect(nnp.stdout.trim()).toBe('read /root-only EACCES');
    const control = await tsbuildOk(['run', '--rm', '-u', '1000:1000', PROBED, '/suid-probe', 'read', '/root-only'], { root });
    expect(control.stdout.trim()).toMatch(/^read \/root-only OK \d+$/);
  }, 120_000);

  it('CVE-2019-14271 class (build side): COPY never follows symlinks in the context or the image onto the host', async () => {
    const ctx = tmp('tsbuild-escape-copy-');
    const hostDir = tmp('tsbuild-escape-hostdir-');
    writeFileSync(join(hostDir, 'host-secret'), 'host only\n');
    symlinkSync(hostDir, join(ctx, 'dirlink'));
    symlinkSync(join(hostDir, 'host-secret'), join(ctx, 'filelink'));
    writeFileSync(join(ctx, 'f'), 'from the context\n');
    writeFileSync(join(ctx, 'Dockerfile'), [
      `FROM ${PROBED}`,
      // an image symlink pointing at a host path: COPY through it must land in the rootfs
      `RUN ln -s ${hostDir} /target`,
      'COPY f /target/f',
      '',
    ].join('\n'));
    await tsbuildOk(['build', '-q', '-t', 'localhost/escape/copy:1', ctx], { root });
    expect(readdirSync(hostDir), 'the build wrote to the host directory').toEqual(['host-secret']);
    const r = await tsbuildOk(['run', '--rm', 'localhost/escape/copy:1', 'cat', `${hostDir}/f`], { root });
    expect(r.stdout).toBe('from the context\n');
    // sources through context symlinks that point outside it resolve inside the context (as
    // BuildKit's scoped resolution does): not found, and the host file is never read
    for (const src of ['filelink', 'dirlink/host-secret']) {
      writeFileSync(join(ctx, 'Dockerfile'), `FROM ${PROBED}\nCOPY ${src} /x\n`);
      const bad = await runTsbuild(['build', '-q', ctx], { root });
      expect(bad.code, `COPY ${src}`).not.toBe(0);
      expect(bad.stdout + bad.stderr).not.toContain('host only');
    }
  }, 120_000);

  it('a --secret value is in no layer, no history entry and no config', async () => {
    const ctx = tmp('tsbuild-escape-secret-');
    const value = `s3cr3t-${process.pid}-${Date.now()}`;
    const src = join(tmp('tsbuild-escape-secret-src-'), 'tok');
    writeFileSync(src, value);
    writeFileSync(join(ctx, 'Dockerfile'), [
      `FROM ${PROBED}`,
      'RUN --mount=type=secret,id=tok cp /run/secrets/tok /tmp/seen-then-deleted && rm /tmp/seen-then-deleted && wc -c /run/secrets/tok',
      'RUN --mount=type=secret,id=tok,env=TOK sh -c \'test -n "$TOK" && echo has-env\'',
      '',
    ].join('\n'));
    const out = tmp('tsbuild-escape-secret-out-');
    const b = await tsbuildOk(['build', '--progress', 'plain', '--secret', `id=tok,src=${src}`, '-o', `type=oci,dest=${join(out, 'layout')},tar=false`, ctx], { root });
    expect(b.stderr).toContain('has-env');
    const blobs = join(out, 'layout', 'blobs', 'sha256');
    let layers = 0;
    for (const d of readdirSync(blobs)) {
      const raw = readFileSync(join(blobs, d));
      const text = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
      if (raw[0] === 0x1f) layers++;
      expect(text.includes(value), `blob ${basename(d).slice(0, 12)} holds the secret`).toBe(false);
    }
    expect(layers).toBeGreaterThan(1);
  }, 120_000);
});
