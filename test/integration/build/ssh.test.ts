/**
 * `RUN --mount=type=ssh` forwards a real ssh-agent into the step: a small static agent client
 * (compiled here; busybox has no ssh-add) lists the agent's keys through `$SSH_AUTH_SOCK` from
 * inside the RUN. Also: id/target/uid/mode, optional and required mounts, `--ssh` with key files
 * (a private agent) and with `$SSH_AUTH_SOCK` through the CLI, and no trace in any layer.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildError } from '../../../builder/exec/errors.js';
import { prepareSshAgents } from '../../../src/cli/wiring/build-runtime.js';
import type { ImageStore } from '../../../src/oci/store/image-store.js';
import { firstReason, needBuiltCli, needTool } from '../../helpers/capabilities.js';
import { runTsbuild } from '../../helpers/tools.js';
import { BUSYBOX, buildUnavailable, layerEntries, leftovers, makeStore, runBuild, unpackImage } from './harness.js';

const why = firstReason(buildUnavailable(), needTool('ssh-agent'), needTool('ssh-add'), needTool('ssh-keygen'), needTool('gcc'));
if (why) console.warn(`skip: ${why}`);

/** Lists an agent's identities (SSH2_AGENTC_REQUEST_IDENTITIES) and prints `keys=N` and each comment. */
const CLIENT_C = String.raw`
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
static int readn(int fd, unsigned char *b, size_t n) { size_t o = 0; while (o < n) { ssize_t r = read(fd, b + o, n - o); if (r <= 0) return -1; o += r; } return 0; }
static unsigned u32(const unsigned char *p) { return (unsigned)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
int main(void) {
  const char *path = getenv("SSH_AUTH_SOCK");
  if (!path) { fprintf(stderr, "SSH_AUTH_SOCK not set\n"); return 2; }
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a; memset(&a, 0, sizeof a); a.sun_family = AF_UNIX; strncpy(a.sun_path, path, sizeof a.sun_path - 1);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 3; }
  unsigned char req[5] = {0, 0, 0, 1, 11};
  if (write(fd, req, 5) != 5) { perror("write"); return 4; }
  unsigned char h[4]; if (readn(fd, h, 4)) return 5;
  unsigned len = u32(h); unsigned char *m = malloc(len); if (!m || readn(fd, m, len)) return 6;
  if (m[0] != 12) { fprintf(stderr, "unexpected reply %d\n", m[0]); return 7; }
  unsigned n = u32(m + 1), off = 5;
  printf("keys=%u\n", n);
  for (unsigned i = 0; i < n; i++) { unsigned bl = u32(m + off); off += 4 + bl; unsigned cl = u32(m + off); off += 4; printf("%.*s\n", (int)cl, m + off); off += cl; }
  return 0;
}
`;

let root = '';
let store: ImageStore;
let dir = '';
let key = '';
let agent: ChildProcess | undefined;
let agentSock = '';
let ctx = '';

beforeAll(async () => {
  if (why) return;
  ({ root, store } = await makeStore());
  dir = mkdtempSync(join(tmpdir(), 'tsbuild-sshmount-test-'));
  ctx = join(dir, 'ctx');
  spawnSync('mkdir', ['-p', ctx]);
  writeFileSync(join(dir, 'client.c'), CLIENT_C);
  const cc = spawnSync('gcc', ['-static', '-O1', '-o', join(ctx, 'agent-list'), join(dir, 'client.c')], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`gcc: ${cc.stderr}`);
  key = join(dir, 'id_test');
  const kg = spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'tsbuild-test-key', '-f', key], { encoding: 'utf8' });
  if (kg.status !== 0) throw new Error(`ssh-keygen: ${kg.stderr}`);
  agentSock = join(dir, 'agent.sock');
  agent = spawn('ssh-agent', ['-D', '-a', agentSock], { stdio: 'ignore' });
  for (let i = 0; i < 200 && !existsSync(agentSock); i++) await sleep(25);
  const add = spawnSync('ssh-add', ['-q', key], { env: { ...process.env, SSH_AUTH_SOCK: agentSock }, encoding: 'utf8' });
  if (add.status !== 0) throw new Error(`ssh-add: ${add.stderr}`);
}, 120_000);

afterAll(() => {
  agent?.kill('SIGTERM');
  if (root) rmSync(root, { recursive: true, force: true });
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!!why)('RUN --mount=type=ssh', () => {
  it('forwards the agent: the step lists its key through SSH_AUTH_SOCK; id/target/uid/mode; nothing in the layers', async () => {
    const df = [
      `FROM ${BUSYBOX}`,
      'COPY agent-list /usr/local/bin/agent-list',
      'RUN --mount=type=ssh agent-list > /default.out && echo "sock=$SSH_AUTH_SOCK" >> /default.out && test -S /run/buildkit/ssh_agent.0',
      'RUN --mount=type=ssh,id=work,target=/agent/sock,uid=65534,gid=65534,mode=0640,required SSH_AUTH_SOCK=/agent/sock agent-list > /work.out && stat -c "%u %g %a" /agent/sock >> /work.out',
      'RUN --mount=type=ssh,id=absent test -z "$SSH_AUTH_SOCK" && test ! -e /run/buildkit/ssh_agent.0 && echo optional-skipped > /absent.out',
    ].join('\n');
    const { result } = await runBuild(root, store, { context: ctx, dockerfile: df, ssh: new Map([['default', agentSock], ['work', agentSock]]) });
    const fs = mkdtempSync(join(dir, 'rootfs-'));
    await unpackImage(result.image, fs);
    expect(readFileSync(join(fs, 'default.out'), 'utf8')).toBe('keys=1\ntsbuild-test-key\nsock=/run/buildkit/ssh_agent.0\n');
    expect(readFileSync(join(fs, 'work.out'), 'utf8')).toBe('keys=1\ntsbuild-test-key\n65534 65534 640\n');
    expect(readFileSync(join(fs, 'absent.out'), 'utf8')).toBe('optional-skipped\n');
    for (const l of (await result.image.layers()).slice(1)) {
      const paths = [...(await layerEntries(l)).keys()];
      expect(paths.filter((p) => p.startsWith('run/buildkit') || p.startsWith('agent'))).toEqual([]);
    }
    expect(leftovers(root)).toEqual([]);
    expect(spawnSync('sh', ['-c', `ls -d ${tmpdir()}/tsbuild-ssh-* 2>/dev/null`]).stdout.toString()).toBe('');
  }, 120_000);

  it('a required agent that was not forwarded fails before anything runs, naming the id and the flag', async () => {
    const err = await runBuild(root, store, { context: ctx, dockerfile: `FROM ${BUSYBOX}\nRUN touch /ran\nRUN --mount=type=ssh,id=deploy,required=true true\n` }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildError);
    expect((err as BuildError).code).toBe('UNAVAILABLE');
    expect((err as BuildError).message).toContain('ssh agent "deploy" is required but was not forwarded (build --ssh deploy=SOCKET|KEY)');
    expect((err as BuildError).location?.line).toBe(3);
  }, 60_000);

  it('--ssh ID=KEY loads the key into a private agent that is stopped afterwards; bad specs are refused', async () => {
    const agents = await prepareSshAgents([`keys=${key}`], {});
    const sock = agents.agents.get('keys')!;
    try {
      const { result } = await runBuild(root, store, { context: ctx, dockerfile: `FROM ${BUSYBOX}\nCOPY agent-list /bin/agent-list\nRUN --mount=type=ssh,id=keys agent-list > /keys.out\n`, ssh: agents.agents });
      const fs = mkdtempSync(join(dir, 'rootfs-'));
      await unpackImage(result.image, fs);
      expect(readFileSync(join(fs, 'keys.out'), 'utf8')).toBe('keys=1\ntsbuild-test-key\n');
    } finally {
      await agents.close();
    }
    expect(existsSync(sock)).toBe(false);
    await expect(prepareSshAgents(['default'], {})).rejects.toThrow('--ssh default: SSH_AUTH_SOCK is not set');
    await expect(prepareSshAgents([`x=${join(dir, 'missing-key')}`], {})).rejects.toThrow(`--ssh x: ${join(dir, 'missing-key')}`);
    await expect(prepareSshAgents(['bad id'], {})).rejects.toThrow('invalid --ssh');
  }, 60_000);

  const cli = needBuiltCli();
  it.skipIf(!!cli)('tsbuild build --ssh default uses $SSH_AUTH_SOCK', async () => {
    const cliCtx = mkdtempSync(join(dir, 'cli-'));
    copyFileSync(join(ctx, 'agent-list'), join(cliCtx, 'agent-list'));
    spawnSync('chmod', ['755', join(cliCtx, 'agent-list')]);
    writeFileSync(join(cliCtx, 'Dockerfile'), `FROM ${BUSYBOX}\nCOPY agent-list /bin/\nRUN --mount=type=ssh agent-list\n`);
    const r = await runTsbuild(['build', '--progress=plain', '--ssh', 'default', cliCtx], { root, env: { ...process.env, SSH_AUTH_SOCK: agentSock } });
    expect(r.stderr).toContain('tsbuild-test-key');
    expect(r.code).toBe(0);
    const none = await runTsbuild(['build', '--progress=plain', '--ssh', 'default', cliCtx], { root, env: { ...process.env, SSH_AUTH_SOCK: '' } });
    expect(none.code).not.toBe(0);
    expect(none.stderr).toContain('SSH_AUTH_SOCK is not set');
  }, 120_000);
});
