import { describe, expect, it } from 'vitest';
import { parseDetachKeys } from '../../../../src/cli/commands/attach.js';
import { parseLogTime } from '../../../../src/cli/commands/logs.js';
import { monitorOptionsFromFlags } from '../../../../src/cli/commands/run.js';

describe('attach, logs and run flags of the monitor', () => {
  it("--detach-keys in docker's syntax", () => {
    expect([...parseDetachKeys('ctrl-p,ctrl-q')]).toEqual([0x10, 0x11]);
    expect([...parseDetachKeys('ctrl-@,ctrl-[,a')]).toEqual([0, 27, 0x61]);
    expect([...parseDetachKeys('ctrl-A')]).toEqual([1]);
    expect(() => parseDetachKeys('ctrl-pp')).toThrow(/invalid detach key "ctrl-pp"/);
    expect(() => parseDetachKeys('')).toThrow(/invalid detach key/);
  });

  it('--since/--until: RFC 3339, unix seconds, durations back from now', () => {
    const now = Date.UTC(2026, 10, 25, 12, 0, 0);
    expect(parseLogTime('2026-11-25T11:00:00Z', '--since', now)).toBe(Date.UTC(2026, 10, 25, 11));
    expect(parseLogTime('2026-11-25T11:00:00.250+01:00', '--since', now)).toBe(Date.UTC(2026, 10, 25, 10, 0, 0, 250));
    expect(parseLogTime('2026-11-25', '--since', now)).toBe(Date.UTC(2026, 10, 25));
    expect(parseLogTime('1764064800', '--since', now)).toBe(1764064800_000);
    expect(parseLogTime('1764064800.5', '--since', now)).toBe(1764064800_500);
    expect(parseLogTime('10m', '--since', now)).toBe(now - 600_000);
    expect(parseLogTime('1h30m', '--since', now)).toBe(now - 5_400_000);
    for (const bad of ['yesterday', '10 m', '2026-13', '-5']) expect(() => parseLogTime(bad, '--since', now), bad).toThrow(/invalid value/);
  });

  it('--health-* and --restart become monitor options', () => {
    expect(monitorOptionsFromFlags({ network: 'none', detach: true, healthCmd: 'true', healthInterval: '1s', healthTimeout: '500ms', healthRetries: '4', healthStartPeriod: '1m', restart: 'on-failure:3' })).toEqual({
      health: { cmd: 'true', intervalNs: 1e9, timeoutNs: 5e8, startPeriodNs: 60e9, retries: 4 },
      restartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 },
    });
    expect(monitorOptionsFromFlags({ network: 'none', healthcheck: false })).toEqual({ health: { disable: true } });
    expect(() => monitorOptionsFromFlags({ network: 'none', healthRetries: 'x' })).toThrow(/--health-retries/);
    expect(() => monitorOptionsFromFlags({ network: 'none', restart: 'always' })).toThrow(/--restart needs -d/);
    expect(monitorOptionsFromFlags({ network: 'none', restart: 'no' })).toEqual({ health: {}, restartPolicy: { Name: 'no', MaximumRetryCount: 0 } });
  });
});
