import { describe, expect, it } from 'vitest';
import { parseRestartPolicy, RestartManager } from '../../../runtime/monitor/restart.js';

describe('restart policies', () => {
  it("parses docker's --restart values", () => {
    expect(parseRestartPolicy('no')).toEqual({ Name: 'no', MaximumRetryCount: 0 });
    expect(parseRestartPolicy('always')).toEqual({ Name: 'always', MaximumRetryCount: 0 });
    expect(parseRestartPolicy('unless-stopped')).toEqual({ Name: 'unless-stopped', MaximumRetryCount: 0 });
    expect(parseRestartPolicy('on-failure')).toEqual({ Name: 'on-failure', MaximumRetryCount: 0 });
    expect(parseRestartPolicy('on-failure:5')).toEqual({ Name: 'on-failure', MaximumRetryCount: 5 });
    for (const bad of ['', 'sometimes', 'always:2', 'on-failure:', 'on-failure:-1', 'no:1']) expect(() => parseRestartPolicy(bad), bad).toThrow(/invalid restart policy/);
  });

  it('backs off like moby: 100 ms doubling, capped at a minute, reset after a run of 10 s', () => {
    const m = new RestartManager({ Name: 'always', MaximumRetryCount: 0 });
    const delays = Array.from({ length: 12 }, () => m.next(0, 50, false)).map((d) => (d.restart ? d.delayMs : -1));
    expect(delays).toEqual([100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000]);
    expect(m.next(0, 10_000, false)).toEqual({ restart: true, delayMs: 100 });
    expect(m.count).toBe(13);
  });

  it('on-failure restarts non-zero exits up to the maximum; stop ends every policy', () => {
    const m = new RestartManager({ Name: 'on-failure', MaximumRetryCount: 2 });
    expect(m.next(3, 10, false).restart).toBe(true);
    expect(m.next(3, 10, false).restart).toBe(true);
    expect(m.next(3, 10, false).restart).toBe(false);
    expect(m.count).toBe(2);
    const unlimited = new RestartManager({ Name: 'on-failure', MaximumRetryCount: 0 });
    expect(unlimited.next(0, 10, false).restart).toBe(false);
    for (let i = 0; i < 20; i++) expect(unlimited.next(1, 10, false).restart).toBe(true);
    expect(new RestartManager({ Name: 'always', MaximumRetryCount: 0 }).next(0, 10, true).restart).toBe(false);
    expect(new RestartManager({ Name: 'unless-stopped', MaximumRetryCount: 0 }).next(137, 10, true).restart).toBe(false);
    expect(new RestartManager({ Name: 'no', MaximumRetryCount: 0 }).next(1, 10, false).restart).toBe(false);
  });
});
