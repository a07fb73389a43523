import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey, randomBytes, sign as cryptoSign } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The registry binary (Debian package docker-registry, distribution 2.8). */
export const REGISTRY_BIN = '/usr/bin/docker-registry';

/** Why registry tests cannot run here, or undefined. */
export function registrySkipReason(): string | undefined {
  if (!existsSync(REGISTRY_BIN)) return `${REGISTRY_BIN} not installed (Debian package docker-registry)`;
  return undefined;
}

/** A user of an auth-enabled test registry. */
export interface TestUser {
  readonly username: string;
  readonly password: string;
  /** Token auth: repositories (exact names) this user may push to; default all. */
  readonly push?: readonly string[];
}

/** Options of {@link startRegistry}. */
export interface RegistryOptions {
  readonly auth?: 'none' | 'htpasswd' | 'token';
  readonly tls?: boolean;
  readonly users?: readonly TestUser[];
  /** Token auth: anonymous users get pull access (default false). */
  readonly anonymousPull?: boolean;
  /** Token auth: JWT signing algorithm (default ES256). */
  readonly tokenAlg?: 'ES256' | 'RS256';
  /**
   * Token auth: what the issuer does when a signed-in user asks for an action it may not have:
   * 'omit' (default) leaves it out of the token, as Docker Hub does (the registry then answers
   * 401); 'forbidden' answers 403 DENIED, as some issuers do.
   */
  readonly tokenDenial?: 'omit' | 'forbidden';
}

/** A token request seen by the test token issuer. */
export interface TokenRequest {
  readonly account?: string;
  readonly service?: string;
  readonly scopes: readonly string[];
  readonly granted: readonly { type: string; name: string; actions: string[] }[];
}

/** A running test registry. */
export interface TestRegistry {
  /** `127.0.0.1:<port>` */
  readonly host: string;
  readonly port: number;
  /** `http://` or `https://` + host */
  readonly url: string;
  readonly dir: string;
  /** PEM of the CA that signed the TLS certificate (tls only). */
  readonly caCert?: string;
  /** Directory holding `ca.crt` (for `--cert-dir` style options). */
  readonly certDir?: string;
  /** Token auth: every request the issuer answered. */
  readonly tokenRequests: TokenRequest[];
  readonly users: readonly TestUser[];
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (racy by nature; the registry start is retried on a clash). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeTls(dir: string): void {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=tsbuild test CA'], dir);
  openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1'], dir);
  execFileSync('sh', ['-c', 'printf "subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n" > server.ext'], { cwd: dir });
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext'], dir);
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

/**
 * Starts Debian's docker-registry on 127.0.0.1 with its own temp storage and config:
 * open, htpasswd basic auth, or token auth (a tiny token issuer in this process signs JWTs
 * with a key whose self-signed certificate the registry trusts via `rootcertbundle`), each
 * optionally behind TLS with a CA made by openssl. Waits until `/v2/` answers. `stop()` kills
 * it and removes everything.
 */
export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'tsbuild-registry-'));
  const users = opts.users ?? (opts.auth && opts.auth !== 'none' ? [{ username: 'alice', password: 'wonderland' }] : []);
  const tokenRequests: TokenRequest[] = [];
  let tokenServer: Server | undefined;
  let child: ChildProcess | undefined;
  const stop = async (): Promise<void> => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(3000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    if (tokenServer) await new Promise((r) => tokenServer!.close(r));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    if (opts.tls) makeTls(dir);
    let authYaml = '';
    if (opts.auth === 'htpasswd') {
      const lines = users.map((u) => execFileSync('htpasswd', ['-Bbn', u.username, u.password], { encoding: 'utf8' }).trim());
      await writeFile(join(dir, 'htpasswd'), `${lines.join('\n')}\n`);
      authYaml = `auth:\n  htpasswd:\n    realm: tsbuild-test\n    path: ${join(dir, 'htpasswd')}\n`;
    } else if (opts.auth === 'token') {
      const alg = opts.tokenAlg ?? 'ES256';
      const newkey = alg === 'ES256' ? ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'] : ['-newkey', 'rsa:2048'];
      openssl(['req', '-x509', ...newkey, '-nodes', '-keyout', 'token.key', '-out', 'token.crt', '-days', '2', '-subj', '/CN=tsbuild test token issuer'], dir);
      const keyPem = await readFile(join(dir, 'token.key'), 'utf8');
      const certPem = await readFile(join(dir, 'token.crt'), 'utf8');
      const certDer = certPem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '');
      const key = createPrivateKey(keyPem);
      const issuer = 'tsbuild-test-issuer';
      const service = 'tsbuild-test-registry';
      tokenServer = createServer((req, res) => {
        const u = new URL(req.url ?? '/', 'http://x');
        let account: string | undefined;
        const h = req.headers.authorization;
        if (h?.startsWith('Basic ')) {
          const [user, ...rest] = Buffer.from(h.slice(6), 'base64').toString('utf8').split(':');
          const pass = rest.join(':');
          const found = users.find((x) => x.username === user && x.password === pass);
          if (!found) {
            res.writeHead(401, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] }));
            return;
          }
          account = found.username;
        }
        const scopes = u.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
        const granted: { type: string; name: string; actions: string[] }[] = [];
        for (const s of scopes) {
          const first = s.indexOf(':');
          const last = s.lastIndexOf(':');
          if (first < 0 || last <= first) continue;
          const type = s.slice(0, first);
          const name = s.slice(first + 1, last);
          const want = s.slice(last + 1).split(',');
          const user = users.find((x) => x.username === account);
          const actions = want.filter((a) => {
            if (a === 'pull') return !!user || !!opts.anonymousPull;
            if (a === 'push' || a === 'delete' || a === '*') return !!user && (!user.push || user.push.includes(name));
            return false;
          });
          if (opts.tokenDenial === 'forbidden' && user && actions.length < want.length) {
            res.writeHead(403, { 'content-type': 'application/json' });
            res.end(JSON.stringify({ errors: [{ code: 'DENIED', message: `requested access to ${name} is denied` }] }));
            return;
          }
          granted.push({ type, name, actions });
        }
        tokenRequests.push({ ...(account ? { account } : {}), ...(u.searchParams.get('service') ? { service: u.searchParams.get('service')! } : {}), scopes, granted });
        const now = Math.floor(Date.now() / 1000);
        const header = { typ: 'JWT', alg, x5c: [certDer] };
        const claims = { iss: issuer, sub: account ?? '', aud: service, exp: now + 300, nbf: now - 10, iat: now, jti: randomBytes(8).toString('hex'), access: granted };
        const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
        const sig = alg === 'ES256' ? cryptoSign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }) : cryptoSign('sha256', Buffer.from(input), key);
        const token = `${input}.${b64url(sig)}`;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
      });
      await new Promise<void>((r) => tokenServer!.listen(0, '127.0.0.1', r));
      const addr = tokenServer.address();
      const tport = typeof addr === 'object' && addr ? addr.port : 0;
      authYaml = `auth:\n  token:\n    realm: http://127.0.0.1:${tport}/token\n    service: ${service}\n    issuer: ${issuer}\n    rootcertbundle: ${join(dir, 'token.crt')}\n`;
    }
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const host = `127.0.0.1:${port}`;
      const tlsYaml = opts.tls ? `  tls:\n    certificate: ${join(dir, 'server.crt')}\n    key: ${join(dir, 'server.key')}\n` : '';
      const config = [
        'version: 0.1',
        'log:',
        '  level: error',
        '  accesslog:',
        '    disabled: true',
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${join(dir, 'data')}`,
        '  delete:',
        '    enabled: true',
        'http:',
        `  addr: ${host}`,
        `  secret: ${randomBytes(16).toString('hex')}`,
        tlsYaml.trimEnd(),
        authYaml.trimEnd(),
      ]
        .filter(Boolean)
        .join('\n');
      await writeFile(join(dir, 'config.yml'), `${config}\n`);
      let stderr = '';
      child = spawn(REGISTRY_BIN, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')).slice(-4000));
      const scheme = opts.tls ? 'https' : 'http';
      const ca = opts.tls ? await readFile(join(dir, 'ca.crt'), 'utf8') : undefined;
      const ready = await waitReady(`${scheme}://${host}/v2/`, ca, child);
      if (ready) {
        const reg: TestRegistry = {
          host,
          port,
          url: `${scheme}://${host}`,
          dir,
          ...(ca ? { caCert: ca, certDir: dir } : {}),
          tokenRequests,
          users,
          stop,
        };
        return reg;
      }
      if (attempt >= 3) throw new Error(`docker-registry did not start on ${host}: ${stderr.slice(-1000)}`);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  } catch (e) {
    await stop();
    throw e;
  }
}

async function waitReady(url: string, ca: string | undefined, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) return false;
    const ok = await new Promise<boolean>((resolve) => {
      const req = (url.startsWith('https') ? httpsRequest : httpRequest)(url, { method: 'GET', ...(ca ? { ca } : {}) }, (res) => {
        res.resume();
        resolve(res.statusCode === 200 || res.statusCode === 401);
      });
      req.on('error', () => resolve(false));
      req.setTimeout(1000, () => req.destroy());
      req.end();
    });
    if (ok) return true;
    await sleep(50);
  }
  return false;
}
