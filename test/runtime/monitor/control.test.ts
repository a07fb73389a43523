import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameReader } from '../../../runtime/monitor/control.js';

describe('attach frames', () => {
  it('round-trip across arbitrary chunk boundaries', () => {
    const frames = [encodeFrame(1, Buffer.from('hello\n')), encodeFrame(2, Buffer.alloc(0)), encodeFrame(2, Buffer.from('x'.repeat(70_000))), encodeFrame(3, Buffer.from('{"exitCode":5}'))];
    const all = Buffer.concat(frames);
    for (const step of [1, 3, 7, 4096, all.length]) {
      const r = new FrameReader();
      const got: { kind: number; payload: Buffer }[] = [];
      for (let i = 0; i < all.length; i += step) got.push(...r.push(all.subarray(i, i + step)));
      expect(got.map((f) => [f.kind, f.payload.length])).toEqual([[1, 6], [2, 0], [2, 70_000], [3, 14]]);
      expect(got[0]!.payload.toString()).toBe('hello\n');
    }
  });
});
