import { describe, expect, it } from 'vitest';
import { RegistryError, parseErrorBody, redactUrl } from '../../../registry/transport/errors.js';
import { errorFromResponse, makeResponse, parseRetryAfter } from '../../../registry/transport/fetch.js';
import { Readable } from 'node:stream';
import { TsbuildError } from '../../../src/util/errors.js';

describe('registry errors', () => {
  it('parses distribution error bodies and ignores anything else', () => {
    expect(parseErrorBody('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"v1"}}]}')).toEqual([
      { code: 'MANIFEST_UNKNOWN', message: 'manifest unknown', detail: { Tag: 'v1' } },
    ]);
    expect(parseErrorBody('<html>bad gateway</html>')).toEqual([]);
    expect(parseErrorBody('{"errors":"nope"}')).toEqual([]);
  });

  it('redacts credentials and query values', () => {
    expect(redactUrl('https://user:pw@cdn.example/blob?X-Amz-Signature=abc&X-Amz-Date=1')).toBe('https://cdn.example/blob?X-Amz-Signature=REDACTED&X-Amz-Date=REDACTED');
    expect(redactUrl('http://127.0.0.1:5000/v2/a/manifests/v1')).toBe('http://127.0.0.1:5000/v2/a/manifests/v1');
  });

  it('computes temporary from status and code', () => {
    expect(new RegistryError('UNKNOWN', 'x', { status: 503 }).temporary).toBe(true);
    expect(new RegistryError('TOOMANYREQUESTS', 'x', { status: 429 }).temporary).toBe(true);
    expect(new RegistryError('NETWORK', 'x').temporary).toBe(true);
    expect(new RegistryError('MANIFEST_UNKNOWN', 'x', { status: 404 }).temporary).toBe(false);
    expect(new RegistryError('DENIED', 'x', { status: 403 }).temporary).toBe(false);
    expect(new RegistryError('DENIED', 'x')).toBeInstanceOf(TsbuildError);
  });

  it('builds the message from the body: operation, ref, message, status and code', async () => {
    const body = Readable.from([Buffer.from('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')]);
    const res = makeResponse(404, { 'content-type': 'application/json' }, body, new URL('http://127.0.0.1:5000/v2/demo/app/manifests/v1'));
    const e = await errorFromResponse(res, { method: 'GET' }, 'pulling 127.0.0.1:5000/demo/app:v1', { ref: '127.0.0.1:5000/demo/app:v1' });
    expect(e.message).toBe('pulling 127.0.0.1:5000/demo/app:v1: manifest unknown (404 MANIFEST_UNKNOWN)');
    expect(e).toMatchObject({ code: 'MANIFEST_UNKNOWN', status: 404, method: 'GET', ref: '127.0.0.1:5000/demo/app:v1', url: 'http://127.0.0.1:5000/v2/demo/app/manifests/v1' });
  });

  it('falls back to the status for HEAD and empty bodies', async () => {
    const res = makeResponse(429, { 'retry-after': '7' }, Readable.from([]), new URL('http://r/v2/a/blobs/sha256:00'));
    const e = await errorFromResponse(res, { method: 'HEAD' }, 'pushing r/a:v1');
    expect(e.message).toBe('pushing r/a:v1: too many requests (429 TOOMANYREQUESTS)');
    expect(e.retryAfterMs).toBe(7000);
    const nf = await errorFromResponse(makeResponse(404, {}, Readable.from([]), new URL('http://r/v2/a/manifests/x')), { method: 'HEAD' }, 'pulling r/a:x', { notFound: 'MANIFEST_UNKNOWN' });
    expect(nf.message).toBe('pulling r/a:x: manifest unknown (404 MANIFEST_UNKNOWN)');
  });

  it('parses Retry-After as seconds or a date', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('3', now)).toBe(3000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:05 GMT', now)).toBe(5000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});
