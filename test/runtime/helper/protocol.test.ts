import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FrameDecoder, MAX_MESSAGE, SETUP_STEPS, encodeMessage, parseHelperMessage } from '../../../runtime/helper/protocol.js';

function frame(json: string): Buffer {
  const body = Buffer.from(json);
  const hdr = Buffer.alloc(4);
  hdr.writeUInt32LE(body.length);
  return Buffer.concat([hdr, body]);
}

describe('helper protocol', () => {
  it('frames messages as a little-endian length and JSON', () => {
    const b = encodeMessage({ kind: 'mapping-written' });
    expect(b.readUInt32LE(0)).toBe(b.length - 4);
    expect(JSON.parse(b.subarray(4).toString())).toEqual({ kind: 'mapping-written' });
  });

  it('decodes messages split across chunks and several in one chunk', () => {
    const d = new FrameDecoder();
    const all = Buffer.concat([
      frame('{"kind":"pid","pid":42}'),
      frame('{"kind":"created","droppedCapabilities":["CAP_SYS_RESOURCE"]}'),
      frame('{"kind":"error","step":"mount","errno":2,"message":"bind source /x for /y"}'),
      frame('{"kind":"exit","exitCode":137,"signal":"SIGKILL"}'),
    ]);
    const got = [];
    for (let i = 0; i < all.length; i += 3) got.push(...d.push(all.subarray(i, Math.min(i + 3, all.length))));
    expect(got).toEqual([
      { kind: 'pid', pid: 42 },
      { kind: 'created', droppedCapabilities: ['CAP_SYS_RESOURCE'] },
      { kind: 'error', step: 'mount', errno: 2, message: 'bind source /x for /y' },
      { kind: 'exit', exitCode: 137, signal: 'SIGKILL' },
    ]);
    expect(d.pending).toBe(0);
  });

  it('keeps an incomplete frame pending', () => {
    const d = new FrameDecoder();
    const f = frame('{"kind":"started"}');
    expect(d.push(f.subarray(0, 6))).toEqual([]);
    expect(d.pending).toBe(6);
    expect(d.push(f.subarray(6))).toEqual([{ kind: 'started' }]);
  });

  it('rejects bad frames and bad messages', () => {
    expect(() => new FrameDecoder().push(Buffer.from([0, 0, 0, 0]))).toThrow(/frame length 0/);
    const big = Buffer.alloc(4);
    big.writeUInt32LE(MAX_MESSAGE + 1);
    expect(() => new FrameDecoder().push(big)).toThrow(/frame length/);
    expect(() => new FrameDecoder().push(frame('{nope'))).toThrow(/not JSON/);
    expect(() => new FrameDecoder().push(frame('{"kind":"bogus"}'))).toThrow(/unknown helper message kind/);
    expect(() => parseHelperMessage({ kind: 'pid', pid: 'x' })).toThrow(/integer pid/);
    expect(() => parseHelperMessage({ kind: 'error', errno: 1 })).toThrow(/step or message/);
    expect(() => parseHelperMessage([])).toThrow(/not an object/);
  });

  it('names the same steps as the C side', () => {
    // every step string the helper's sources report must be a SetupStep
    const dir = new URL('../../../native/src/', import.meta.url);
    const src = ['init.c', 'mount.c', 'caps.c', 'seccomp.c', 'main.c'].map((f) => readFileSync(new URL(f, dir), 'utf8')).join('\n');
    const used = new Set([...src.matchAll(/fail\(\s*(?:&?err|err), "([a-z_-]+)"/g)].map((m) => m[1]));
    for (const m of src.matchAll(/mkdir_in_root\([^;]*"([a-z_-]+)"\)/g)) used.add(m[1]);
    expect(used.size).toBeGreaterThan(10);
    for (const s of used) expect(SETUP_STEPS as readonly string[]).toContain(s);
  });
});
