/**
 * `tsbuild runtime` driven like runc: create → state → start → ps → kill → state → delete,
 * with the state JSON compared field by field against runc's for the same bundle.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeBundle, nativeSkipReason, testSpec, type TestBundle } from '../../runtime/helper/bundle.js';

const CLI = fileURLToPath(new URL('../../../dist/src/cli/main.js', import.meta.url));
const why = nativeSkipReason() ?? (existsSync(CLI) ? undefined : 'the CLI is not built (npm run build)');
if (why) console.warn(`skip: ${why}`);
const runcWhy = spawnSync('sh', ['-c', 'command -v runc']).status === 0 ? undefined : 'runc is not installed';

let bundle: TestBundle;
let root: string;
const ID = `life${process.pid}`;

function ts(...args: string[]) {
  return spawnSync('node', [CLI, '--root', join(root, 'store'), 'runtime', ...args], { encoding: 'utf8', timeout: 30_000 });
}
function runc(...args: string[]) {
  return spawnSync('runc', ['--root', join(root, 'runc'), ...args], { encoding: 'utf8', timeout: 30_000 });
}
let n = 0;
/**
 * `create` hands its stdio to the container (as runc does), so pipes would stay open until the
 * container exits: detached creates write to a file instead, read back for the checks.
 */
function detached(cmd: string, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const log = join(root, `create-${n++}.log`);
  const fd = openSync(log, 'w');
  try {
    const r = spawnSync(cmd, args, { stdio: ['ignore', fd, fd], timeout: 30_000 });
    return { status: r.status, stdout: '', stderr: readFileSync(log, 'utf8') };
  } finally {
    closeSync(fd);
  }
}
const tsCreate = (...args: string[]) => detached('node', [CLI, '--root', join(root, 'store'), 'runtime', 'create', ...args]);
const runcCreate = (...args: string[]) => detached('runc', ['--root', join(root, 'runc'), 'create', ...args]);

async function until(f: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !f(); i++) await new Promise((r) => setTimeout(r, 10));
}

describe.skipIf(!!why)('tsbuild runtime CLI lifecycle', () => {
  beforeAll(() => {
    bundle = makeBundle('tsbuild-cli-');
    root = mkdtempSync(join(tmpdir(), 'tsbuild-cli-root-'));
    bundle.writeSpec(testSpec(['/bin/test-init', 'sleep', '30']));
  });
  afterAll(() => {
    ts('delete', '--force', ID);
    if (!runcWhy) runc('delete', '--force', `${ID}-runc`);
    bundle?.remove();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('create/start/state/ps/kill/delete with runc-shaped state and exit codes', async () => {
    const pidFile = join(root, 'pid');
    const create = tsCreate('--bundle', bundle.dir, '--pid-file', pidFile, ID);
    expect(create.stderr).toBe('');
    expect(create.status).toBe(0);
    const created = JSON.parse(ts('state', ID).stdout) as Record<string, unknown>;
    expect(created).toMatchObject({ ociVersion: expect.any(String), id: ID, status: 'created', bundle: bundle.dir, pid: Number(readFileSync(pidFile, 'utf8')) });
    expect(tsCreate('--bundle', bundle.dir, ID).status).toBe(1); // exists

    expect(ts('start', ID).status).toBe(0);
    expect(JSON.parse(ts('state', ID).stdout)).toMatchObject({ status: 'running' });
    expect(ts('start', ID).status).toBe(1); // not created any more
    const ps = JSON.parse(ts('ps', '--format', 'json', ID).stdout) as number[];
    expect(ps).toContain(created.pid);
    const list = ts('list').stdout.split('\n');
    expect(list[0]).toMatch(/^ID\s+PID\s+STATUS\s+BUNDLE\s+CREATED/);
    expect(list.some((l) => new RegExp(`^${ID}\\s+\\d+\\s+running\\s`).test(l))).toBe(true);

    expect(ts('delete', ID).status).toBe(1); // running, no --force
    expect(ts('kill', ID, 'KILL').status).toBe(0);
    await until(() => (JSON.parse(ts('state', ID).stdout) as { status: string }).status === 'stopped');
    const stopped = JSON.parse(ts('state', ID).stdout) as Record<string, unknown>;
    expect(stopped.status).toBe('stopped');
    // the recorded pid stays (crun does; runtime-tools' hooks_stdin relies on it), runc reports 0
    expect(stopped.pid).toBe(created.pid);
    expect(ts('delete', ID).status).toBe(0);
    const gone = ts('state', ID);
    expect(gone.status).toBe(1);
    expect(gone.stderr).toMatch(new RegExp(`container ${ID} does not exist`));

    if (runcWhy) return console.warn(`skip runc comparison: ${runcWhy}`);
    expect(runcCreate('--bundle', bundle.dir, `${ID}-runc`).status).toBe(0);
    const theirs = JSON.parse(runc('state', `${ID}-runc`).stdout) as Record<string, unknown>;
    runc('delete', '--force', `${ID}-runc`);
    // the same runtime-spec fields, the same meaning
    for (const k of ['ociVersion', 'id', 'status', 'pid', 'bundle', 'rootfs', 'created', 'owner']) {
      expect(Object.keys(created), k).toContain(k);
      expect(Object.keys(theirs), k).toContain(k);
    }
    expect(theirs.status).toBe(created.status);
    expect(theirs.bundle).toBe(created.bundle);
    expect(theirs.rootfs).toBe(created.rootfs);
  });

  it('run exits with the container status; pause without cgroups is NOT_SUPPORTED', () => {
    bundle.writeSpec(testSpec(['/bin/test-init', 'exit', '42']));
    expect(ts('run', '--bundle', bundle.dir, `${ID}r1`).status).toBe(42);
    bundle.writeSpec(testSpec(['/bin/no-such-binary']));
    const bad = ts('run', '--bundle', bundle.dir, `${ID}r2`);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/exec: executing \/bin\/no-such-binary/);
    bundle.writeSpec(testSpec(['/bin/test-init', 'sleep', '30']));
    expect(tsCreate('--no-cgroups', '--bundle', bundle.dir, `${ID}n`).status).toBe(0);
    expect(ts('start', `${ID}n`).status).toBe(0);
    const pause = ts('pause', `${ID}n`);
    expect(pause.status).toBe(1);
    expect(pause.stderr).toMatch(/no cgroup/);
    expect(ts('delete', '--force', `${ID}n`).status).toBe(0);
    expect(JSON.parse(ts('list', '--format', 'json').stdout)).toEqual([]);
  });
});
