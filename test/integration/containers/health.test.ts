import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUSYBOX, ContainerEnv, containerTestsUnavailable, until } from '../../helpers/container-env.js';

const why = containerTestsUnavailable();
if (why) console.warn(`skip: ${why}`);

const HC_IMAGE = 'localhost/ctr/healthy:latest';

interface Health { Status: string; FailingStreak: number; Log: { Start: string; End: string; ExitCode: number; Output: string }[] }

describe.skipIf(!!why)('containers: healthchecks run by the monitor', () => {
  const env = new ContainerEnv();
  const health = async (ref: string): Promise<Health> => (await env.inspect(ref)).State.Health as Health;
  const status = async (ref: string): Promise<string> => (JSON.parse((await env.ok('ps', '-a', '--format', 'json', '--no-trunc')).trim().split('\n').find((l) => l.includes(ref))!) as { Status: string }).Status;

  beforeAll(async () => {
    await env.setup();
    // an image with a HEALTHCHECK in its config, from the builder
    const ctx = mkdtempSync(join(tmpdir(), 'tsbuild-hc-'));
    try {
      writeFileSync(join(ctx, 'Dockerfile'), `FROM ${BUSYBOX}\nHEALTHCHECK --interval=1s --timeout=5s --retries=1 CMD ["test", "-f", "/tmp/ok"]\n`);
      await env.ok('build', '-q', '-t', HC_IMAGE, ctx);
    } finally {
      rmSync(ctx, { recursive: true, force: true });
    }
  });
  afterEach(async () => {
    expect(await env.cleanup()).toEqual([]);
  });
  afterAll(() => env.destroy());

  it('--health-cmd: starting, healthy once the check passes, unhealthy after --health-retries failures; runs inside the container', async () => {
    const id = await env.runD('--name', 'hc', '--health-cmd', 'test -f /tmp/ok && tr "\\0" " " </proc/1/cmdline', '--health-interval', '1s', '--health-retries', '2', BUSYBOX, 'sleep', '60');
    const first = await env.inspect('hc');
    expect(first.Config.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'test -f /tmp/ok && tr "\\0" " " </proc/1/cmdline'], Interval: 1e9, Timeout: 30e9, StartPeriod: 0, Retries: 2 });
    expect(first.State.Health.Status).toMatch(/^(starting|unhealthy)$/);

    await env.ok('exec', 'hc', 'touch', '/tmp/ok');
    const healthy = await until(async () => ((await health(id)).Status === 'healthy' ? health(id) : undefined), 20_000);
    expect(healthy?.Status).toBe('healthy');
    expect(healthy!.FailingStreak).toBe(0);
    const pass = healthy!.Log.at(-1)!;
    // the check ran in the container's pid namespace: its pid 1 is the container's command
    expect(pass).toMatchObject({ ExitCode: 0, Output: 'sleep 60 ' });
    expect(Date.parse(pass.End)).toBeGreaterThanOrEqual(Date.parse(pass.Start));
    expect(await status(id)).toMatch(/^Up .* \(healthy\)$/);
    expect(await env.ok('ps')).toContain('(healthy)');

    await env.ok('exec', 'hc', 'rm', '/tmp/ok');
    const sick = await until(async () => ((await health(id)).Status === 'unhealthy' ? health(id) : undefined), 20_000);
    expect(sick?.Status).toBe('unhealthy');
    expect(sick!.FailingStreak).toBeGreaterThanOrEqual(2);
    expect(sick!.Log.at(-1)).toMatchObject({ ExitCode: 1, Output: '' });
    expect(await status(id)).toMatch(/^Up .* \(unhealthy\)$/);
    // docker keeps the last 5 results
    expect(sick!.Log.length).toBeLessThanOrEqual(5);
    const later = await until(async () => ((await health(id)).FailingStreak >= 5 ? health(id) : undefined), 20_000);
    expect(later?.Log).toHaveLength(5);
    expect(later!.Log.every((r) => r.ExitCode === 1)).toBe(true);
  });

  it("the image's HEALTHCHECK runs; --health-timeout kills a check that hangs; --no-healthcheck disables it", async () => {
    const img = await env.runD(HC_IMAGE, 'sleep', '60');
    expect((await env.inspect(img)).Config.Healthcheck).toEqual({ Test: ['CMD', 'test', '-f', '/tmp/ok'], Interval: 1e9, Timeout: 5e9, StartPeriod: 0, Retries: 1 });
    const slow = await env.runD('--health-cmd', 'sleep 20', '--health-timeout', '300ms', '--health-interval', '1s', '--health-retries', '1', BUSYBOX, 'sleep', '60');
    const off = await env.runD('--no-healthcheck', HC_IMAGE, 'sleep', '60');
    expect((await env.inspect(off)).State.Health).toBeUndefined();
    expect((await env.inspect(off)).Config.Healthcheck).toBeUndefined();

    const imgSick = await until(async () => ((await health(img)).Status === 'unhealthy' ? health(img) : undefined), 20_000);
    expect(imgSick?.Log[0]).toMatchObject({ ExitCode: 1 });
    await env.ok('exec', img, 'touch', '/tmp/ok');
    expect((await until(async () => (await health(img)).Status === 'healthy', 20_000))).toBe(true);

    const timedOut = await until(async () => ((await health(slow)).Status === 'unhealthy' ? health(slow) : undefined), 20_000);
    expect(timedOut?.Log[0]).toMatchObject({ ExitCode: -1, Output: 'Health check exceeded timeout (300ms)' });
    const r = timedOut!.Log[0]!;
    expect(Date.parse(r.End) - Date.parse(r.Start)).toBeLessThan(10_000);
    expect(await env.ok('ps')).not.toMatch(new RegExp(`^${off.slice(0, 12)}.*\\(`, 'm'));
  });

  it('bad --health-* values are usage errors', async () => {
    const bad = await env.ts('run', '-d', '--health-interval', 'soon', BUSYBOX, 'true');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('invalid duration "soon" for --health-interval');
    const both = await env.ts('run', '-d', '--no-healthcheck', '--health-cmd', 'true', BUSYBOX, 'true');
    expect(both.code).toBe(2);
  });
});
