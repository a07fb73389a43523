import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** A request as the proxy saw it. */
export interface ProxyLogEntry {
  readonly method: string;
  readonly path: string;
  readonly range?: string;
  readonly contentRange?: string;
  /** The status sent (or 0 when the connection was dropped before a status). */
  status: number;
  /** The rule applied, if any. */
  readonly rule?: string;
}

/** What to do with a matching request. */
export type FaultAction =
  /** Forward untouched (to let a request through before a later rule applies). */
  | { readonly kind: 'pass' }
  /** Answer with this status (and headers/body) without asking the registry. */
  | { readonly kind: 'status'; readonly status: number; readonly headers?: Record<string, string>; readonly body?: string }
  /** Forward, then cut the connection after `bytes` bytes of the response body. */
  | { readonly kind: 'drop-response'; readonly bytes: number }
  /** Read `bytes` bytes of the request body, then cut the connection (nothing reaches the registry). */
  | { readonly kind: 'drop-request'; readonly bytes: number }
  /** Forward, but end the response body cleanly after `bytes` bytes (chunked, no Content-Length). */
  | { readonly kind: 'truncate'; readonly bytes: number }
  /** Forward, flipping one byte of the response body (same length): a wrong digest. */
  | { readonly kind: 'corrupt'; readonly at?: number }
  /** Slow loris: forward the headers and `bytes` bytes of the body, then go silent (the connection stays open). */
  | { readonly kind: 'stall'; readonly bytes: number };

/** A per-request rule: the first matching rule with uses left is applied. */
export interface FaultRule {
  readonly name?: string;
  readonly method?: string;
  /** Matched against the path and query. */
  readonly path?: RegExp;
  /** Only requests with (true) / without (false) a Range header. */
  readonly ranged?: boolean;
  /** How many requests the rule applies to (default 1). */
  times?: number;
  readonly action: FaultAction;
}

/** A running fault proxy. */
export interface FaultProxy {
  /** `127.0.0.1:<port>`: use it as the registry host. */
  readonly host: string;
  readonly log: ProxyLogEntry[];
  readonly rules: FaultRule[];
  addRule(r: FaultRule): void;
  stop(): Promise<void>;
}

/**
 * A loopback HTTP proxy in front of a plain-HTTP registry (`target` = host:port) that injects
 * faults per request: drop a connection mid-body (either direction), answer a status (500,
 * 429 + Retry-After), truncate a body, or corrupt it. The Host header is passed through, so
 * the registry's Location URLs point back at the proxy.
 */
export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const [thost, tport] = target.split(':') as [string, string];
  const rules: FaultRule[] = [];
  const log: ProxyLogEntry[] = [];
  const sockets = new Set<Socket>();

  const pick = (req: IncomingMessage): FaultRule | undefined => {
    const r = rules.find(
      (x) =>
        (x.times ?? 1) > 0 &&
        (!x.method || x.method === req.method) &&
        (!x.path || x.path.test(req.url ?? '')) &&
        (x.ranged === undefined || x.ranged === !!req.headers.range),
    );
    if (r) r.times = (r.times ?? 1) - 1;
    return r;
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const rule = pick(req);
    const entry: ProxyLogEntry = {
      method: req.method ?? '',
      path: req.url ?? '',
      ...(req.headers.range ? { range: req.headers.range } : {}),
      ...(req.headers['content-range'] ? { contentRange: String(req.headers['content-range']) } : {}),
      status: 0,
      ...(rule ? { rule: rule.name ?? rule.action.kind } : {}),
    };
    log.push(entry);
    const action = rule?.action;
    if (action?.kind === 'status') {
      req.resume();
      entry.status = action.status;
      res.writeHead(action.status, { 'content-type': 'application/json', ...action.headers });
      res.end(action.body ?? '');
      return;
    }
    if (action?.kind === 'drop-request') {
      let n = 0;
      req.on('data', (c: Buffer) => {
        n += c.length;
        if (n >= action.bytes) req.socket.destroy();
      });
      req.on('end', () => req.socket.destroy());
      return;
    }
    const up = httpRequest({ host: thost, port: Number(tport), method: req.method, path: req.url, headers: req.headers }, (ur) => {
      entry.status = ur.statusCode ?? 0;
      const headers = { ...ur.headers };
      /** Forwards the first `bytes` bytes of the body; `then` runs once they are written. */
      const forwardFirst = (bytes: number, then?: () => void) => {
        let sent = 0;
        ur.on('data', (c: Buffer) => {
          if (sent >= bytes) return;
          const part = c.subarray(0, bytes - sent);
          sent += part.length;
          res.write(part, () => {
            if (sent >= bytes) then?.();
          });
        });
      };
      if (action?.kind === 'truncate') {
        delete headers['content-length'];
        res.writeHead(ur.statusCode ?? 502, headers);
        forwardFirst(action.bytes);
        ur.on('end', () => res.end());
        return;
      }
      res.writeHead(ur.statusCode ?? 502, headers);
      if (action?.kind === 'stall') {
        // never ends: the client's idle timeout must notice (stop() destroys the socket)
        forwardFirst(action.bytes);
        return;
      }
      if (action?.kind === 'drop-response') {
        forwardFirst(action.bytes, () => {
          ur.destroy();
          res.socket?.destroy();
        });
        ur.on('end', () => res.socket?.destroy());
        return;
      }
      if (action?.kind === 'corrupt') {
        let pos = 0;
        const at = action.at ?? 0;
        ur.on('data', (c: Buffer) => {
          if (at >= pos && at < pos + c.length) {
            const copy = Buffer.from(c);
            copy[at - pos] = copy[at - pos]! ^ 0xff;
            c = copy;
          }
          pos += c.length;
          res.write(c);
        });
        ur.on('end', () => res.end());
        return;
      }
      ur.pipe(res);
    });
    up.on('error', () => res.socket?.destroy());
    req.pipe(up);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    log,
    rules,
    addRule: (r) => rules.push(r),
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}
