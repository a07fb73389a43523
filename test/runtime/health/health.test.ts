import { describe, expect, it } from 'vitest';
import { applyProbe, initialHealth, parseGoDuration, probeArgs, resolveHealthcheck, type HealthResult } from '../../../runtime/health/health.js';

const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();
const result = (startMs: number, code: number, out = ''): HealthResult => ({ Start: at(startMs), End: at(startMs + 5), ExitCode: code, Output: out });

describe('healthchecks', () => {
  it("resolves the image's HEALTHCHECK with docker's defaults and the --health-* overrides", () => {
    expect(resolveHealthcheck(undefined)).toBeUndefined();
    expect(resolveHealthcheck({ Test: ['NONE'] })).toBeUndefined();
    expect(resolveHealthcheck({ Test: ['CMD', 'true'] })).toEqual({ Test: ['CMD', 'true'], Interval: 30e9, Timeout: 30e9, StartPeriod: 0, Retries: 3 });
    const img = { Test: ['CMD-SHELL', 'curl -f localhost'], Interval: 5e9, Timeout: 0, Retries: 2 };
    expect(resolveHealthcheck(img)).toEqual({ Test: ['CMD-SHELL', 'curl -f localhost'], Interval: 5e9, Timeout: 30e9, StartPeriod: 0, Retries: 2 });
    expect(resolveHealthcheck(img, { cmd: 'true', retries: 7, startPeriodNs: 1e9 })).toEqual({ Test: ['CMD-SHELL', 'true'], Interval: 5e9, Timeout: 30e9, StartPeriod: 1e9, Retries: 7 });
    expect(resolveHealthcheck(img, { disable: true })).toBeUndefined();
    expect(resolveHealthcheck(undefined, { intervalNs: 1e9 })).toBeUndefined();
    expect(probeArgs({ Test: ['CMD-SHELL', 'test -f /x'], Interval: 1, Timeout: 1, StartPeriod: 0, Retries: 1 })).toEqual(['/bin/sh', '-c', 'test -f /x']);
    expect(probeArgs({ Test: ['CMD', 'test', '-f', '/x'], Interval: 1, Timeout: 1, StartPeriod: 0, Retries: 1 })).toEqual(['test', '-f', '/x']);
  });

  it('starting → unhealthy after Retries failures → healthy on a success; failures in the start period do not count while starting', () => {
    const h = { Test: ['CMD', 'x'], Interval: 1e9, Timeout: 1e9, StartPeriod: 3e9, Retries: 2 };
    const started = new Date(Date.UTC(2026, 0, 1));
    let s = initialHealth();
    s = applyProbe(s, result(1000, 1), h, started);
    s = applyProbe(s, result(2000, 1), h, started);
    expect(s).toMatchObject({ Status: 'starting', FailingStreak: 0 });
    expect(s.Log).toHaveLength(2);
    s = applyProbe(s, result(4000, 1), h, started);
    expect(s).toMatchObject({ Status: 'starting', FailingStreak: 1 });
    s = applyProbe(s, result(5000, 2), h, started);
    expect(s).toMatchObject({ Status: 'unhealthy', FailingStreak: 2 });
    s = applyProbe(s, result(6000, 0, 'ok'), h, started);
    expect(s).toMatchObject({ Status: 'healthy', FailingStreak: 0 });
    s = applyProbe(s, result(7000, 1), h, started);
    expect(s).toMatchObject({ Status: 'healthy', FailingStreak: 1 });
    // the last 5 results, oldest dropped
    expect(s.Log.map((r) => r.Start)).toEqual([2000, 4000, 5000, 6000, 7000].map(at));
  });

  it("keeps docker's first 4 KiB of output; parses Go durations", () => {
    const s = applyProbe(initialHealth(), result(0, 0, 'x'.repeat(5000)), { Test: ['CMD', 'x'], Interval: 1, Timeout: 1, StartPeriod: 0, Retries: 1 }, new Date(0));
    expect(s.Log[0]!.Output).toHaveLength(4096);
    expect(parseGoDuration('1s')).toBe(1e9);
    expect(parseGoDuration('500ms')).toBe(5e8);
    expect(parseGoDuration('1m30s')).toBe(90e9);
    expect(parseGoDuration('1.5h')).toBe(5400e9);
    expect(parseGoDuration('0')).toBe(0);
    for (const bad of ['', '10', 's', '1x', '1s ', 'soon']) expect(parseGoDuration(bad), bad).toBeUndefined();
  });
});
