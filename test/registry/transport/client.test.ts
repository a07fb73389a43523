import { describe, expect, it } from 'vitest';
import { apiHost, isLoopbackHost, isPlainHttpAnswer } from '../../../registry/transport/client.js';

describe('registry endpoints', () => {
  it('treats localhost, 127.0.0.0/8 and ::1 as loopback', () => {
    expect(isLoopbackHost('localhost:5000')).toBe(true);
    expect(isLoopbackHost('127.0.0.1')).toBe(true);
    expect(isLoopbackHost('127.3.2.1:443')).toBe(true);
    expect(isLoopbackHost('[::1]:5000')).toBe(true);
    expect(isLoopbackHost('128.0.0.1:5000')).toBe(false);
    expect(isLoopbackHost('localhost.example.com')).toBe(false);
    expect(isLoopbackHost('docker.io')).toBe(false);
  });

  it('maps docker.io to its API host', () => {
    expect(apiHost('docker.io')).toBe('registry-1.docker.io');
    expect(apiHost('127.0.0.1:5000')).toBe('127.0.0.1:5000');
  });

  it('falls back to http only for plain-HTTP answers, never for certificate errors', () => {
    const wrap = (code: string, message: string): Error => Object.assign(new Error('GET x: failed'), { cause: Object.assign(new Error(message), { code }) });
    expect(isPlainHttpAnswer(wrap('ERR_SSL_WRONG_VERSION_NUMBER', 'wrong version number'))).toBe(true);
    expect(isPlainHttpAnswer(wrap('ECONNRESET', 'socket hang up'))).toBe(true);
    expect(isPlainHttpAnswer(wrap('UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'unable to verify the first certificate'))).toBe(false);
    expect(isPlainHttpAnswer(wrap('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames"))).toBe(false);
    expect(isPlainHttpAnswer(wrap('ECONNREFUSED', 'connect ECONNREFUSED'))).toBe(false);
  });
});
