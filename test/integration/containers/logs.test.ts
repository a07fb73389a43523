import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUSYBOX, ContainerEnv, containerTestsUnavailable, until } from '../../helpers/container-env.js';

const why = containerTestsUnavailable();
if (why) console.warn(`skip: ${why}`);

describe.skipIf(!!why)('containers: logs --since/--until, inspect of a container by name', () => {
  const env = new ContainerEnv();
  beforeAll(() => env.setup());
  afterEach(async () => {
    expect(await env.cleanup()).toEqual([]);
  });
  afterAll(() => env.destroy());

  it('logs --since and --until take RFC 3339, unix seconds and durations', async () => {
    const id = await env.runD('--name', 'talker', BUSYBOX, 'sh', '-c', 'echo early; sleep 2; echo late; sleep 60');
    await until(async () => (await env.ok('logs', 'talker')).includes('late'), 30_000);
    const entries = (await env.ok('logs', '-t', 'talker')).trim().split('\n').map((l) => ({ time: l.slice(0, l.indexOf(' ')), text: l.slice(l.indexOf(' ') + 1) }));
    expect(entries.map((e) => e.text)).toEqual(['early', 'late']);
    const [early, late] = entries.map((e) => Date.parse(e.time));
    expect(late! - early!).toBeGreaterThanOrEqual(1500);
    const mid = new Date((early! + late!) / 2);

    expect(await env.ok('logs', '--since', mid.toISOString(), 'talker')).toBe('late\n');
    expect(await env.ok('logs', '--until', mid.toISOString(), 'talker')).toBe('early\n');
    expect(await env.ok('logs', '--since', (mid.getTime() / 1000).toFixed(3), 'talker')).toBe('late\n');
    expect(await env.ok('logs', '--since', String(Math.floor(early! / 1000)), '--until', mid.toISOString(), id)).toBe('early\n');
    // relative: everything of the last hour, nothing of the future
    expect(await env.ok('logs', '--since', '1h', 'talker')).toBe('early\nlate\n');
    expect(await env.ok('logs', '--since', '2099-01-01T00:00:00Z', 'talker')).toBe('');
    expect(await env.ok('logs', '--until', '1h', 'talker')).toBe('');
    const bad = await env.ts('logs', '--since', 'yesterday', 'talker');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('invalid value "yesterday" for --since');
  });

  it('inspect falls back to containers when no image matches; --type picks one', async () => {
    const id = await env.runD('--name', 'probe', BUSYBOX, 'sleep', '60');
    const byName = JSON.parse(await env.ok('inspect', 'probe')) as { Id: string; Name: string; State: { Status: string } }[];
    expect(byName).toEqual([expect.objectContaining({ Id: id, Name: '/probe', State: expect.objectContaining({ Status: 'running' }) })]);
    expect((await env.ok('inspect', '--format', '{{.State.Status}} {{.Name}}', id.slice(0, 12))).trim()).toBe('running /probe');
    // an image and a container in one call, like docker inspect
    const both = JSON.parse(await env.ok('inspect', BUSYBOX, 'probe')) as Record<string, unknown>[];
    expect(both).toHaveLength(2);
    expect(both[0]).toHaveProperty('RootFS');
    expect(both[1]).toMatchObject({ Id: id });
    const onlyImage = await env.ts('inspect', '--type', 'image', 'probe');
    expect(onlyImage.code).toBe(1);
    const onlyCtr = await env.ts('inspect', '--type', 'container', BUSYBOX);
    expect(onlyCtr.code).toBe(1);
    expect(onlyCtr.stderr).toContain('no such container');
    const none = await env.ts('inspect', 'nothing-here');
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('no such object: nothing-here');
  });
});
