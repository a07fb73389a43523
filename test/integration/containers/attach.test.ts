import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BUSYBOX, ContainerEnv, containerTestsUnavailable } from '../../helpers/container-env.js';
import { TSBUILD_MAIN } from '../../helpers/tools.js';

const why = containerTestsUnavailable();
if (why) console.warn(`skip: ${why}`);

/** A running `tsbuild attach` with its outputs collected. */
class Attach {
  readonly child: ChildProcessWithoutNullStreams;
  out = '';
  err = '';
  readonly exited: Promise<number>;

  constructor(root: string, args: string[]) {
    this.child = spawn(process.execPath, [TSBUILD_MAIN, '--root', root, 'attach', ...args], { stdio: 'pipe' });
    this.child.stdout.on('data', (b: Buffer) => { this.out += b.toString('utf8'); });
    this.child.stderr.on('data', (b: Buffer) => { this.err += b.toString('utf8'); });
    this.exited = new Promise((r) => this.child.on('close', (code, sig) => r(code ?? (sig ? 128 : 255))));
    setTimeout(() => this.child.kill('SIGKILL'), 60_000).unref();
  }

  /** Resolves once stdout (or stderr) contains `s`; rejects after `ms`. */
  async waitFor(s: string, which: 'out' | 'err' = 'out', ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this[which].includes(s)) {
      if (Date.now() > deadline) throw new Error(`attach never printed ${JSON.stringify(s)} on std${which}; got ${JSON.stringify(this.out)} / ${JSON.stringify(this.err)}`);
      if (this.child.exitCode !== null) throw new Error(`attach exited ${this.child.exitCode} before printing ${JSON.stringify(s)}: ${this.err}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Writes to attach's stdin, retried until `expect` shows up (the attachment is live only after its handshake). */
  async send(line: string, expectOut: string): Promise<void> {
    const deadline = Date.now() + 20_000;
    this.child.stdin.write(line);
    for (;;) {
      try {
        await this.waitFor(expectOut, 'out', 2000);
        return;
      } catch (e) {
        if (Date.now() > deadline) throw e;
        this.child.stdin.write(line);
      }
    }
  }
}

describe.skipIf(!!why)('containers: attach to a detached container', () => {
  const env = new ContainerEnv();
  beforeAll(() => env.setup());
  afterEach(async () => {
    expect(await env.cleanup()).toEqual([]);
  });
  afterAll(() => env.destroy());

  it('run -d -i: attach relays stdin and the echo; ctrl-p ctrl-q detaches and leaves the container running', async () => {
    const id = await env.runD('-i', '--name', 'catter', BUSYBOX, 'cat');
    const a = new Attach(env.root, ['catter']);
    await a.send('hello\n', 'hello\n');
    a.child.stdin.write('\x10\x11');
    expect(await a.exited).toBe(0);
    expect((await env.inspect(id)).State.Status).toBe('running');
    // what went through attach is in the log too
    expect(await env.ok('logs', 'catter')).toContain('hello\n');
    // a second attachment works the same
    const b = new Attach(env.root, [id.slice(0, 12)]);
    await b.send('again\n', 'again\n');
    b.child.stdin.write('\x10\x11');
    expect(await b.exited).toBe(0);
    expect(b.out.startsWith('again\n')).toBe(true);
  });

  it('stdout and stderr stay apart; attach ends with the exit code of the container', async () => {
    await env.runD('-i', '--name', 'answer', BUSYBOX, 'sh', '-c', 'read l; echo "out $l"; echo "err $l" >&2; exit 5');
    const a = new Attach(env.root, ['answer']);
    a.child.stdin.write('x\n');
    expect(await a.exited).toBe(5);
    expect(a.out).toBe('out x\n');
    expect(a.err).toBe('err x\n');
  });

  it('-t: attach relays the terminal (echo by the pty, CRLF); the detach keys are not passed on', async () => {
    await env.runD('-i', '-t', '--name', 'term', BUSYBOX, 'cat');
    const a = new Attach(env.root, ['term']);
    await a.send('hi\n', 'hi\r\n');
    a.child.stdin.write('\x10\x11');
    expect(await a.exited).toBe(0);
    expect(a.out.replace(/\r/g, '')).toMatch(/^(hi\n)+$/);
    expect((await env.inspect('term')).State.Running).toBe(true);
  });

  it('--sig-proxy (default) passes SIGINT on to a container without a terminal', async () => {
    await env.runD('--name', 'trapper', BUSYBOX, 'sh', '-c', 'trap "echo got-int; exit 9" INT; while :; do echo tick; sleep 0.2; done');
    const a = new Attach(env.root, ['--no-stdin', 'trapper']);
    // output through the attachment: its signal handlers are in place
    await a.waitFor('tick\n');
    a.child.kill('SIGINT');
    expect(await a.exited).toBe(9);
    expect(a.out).toContain('got-int\n');
  });

  it('--no-stdin streams live output of a container without -i until it stops; a stopped container cannot be attached', async () => {
    await env.runD('--name', 'ticker', BUSYBOX, 'sh', '-c', 'trap "exit 7" TERM; while :; do echo tick; sleep 0.2; done');
    const a = new Attach(env.root, ['--no-stdin', 'ticker']);
    await a.waitFor('tick\ntick\n');
    await env.ok('stop', 'ticker');
    expect(await a.exited).toBe(7);
    const late = await env.ts('attach', 'ticker');
    expect(late.code).not.toBe(0);
    expect(late.stderr).toContain('cannot attach to container ticker: it is exited, not running');
    const bad = await env.ts('attach', '--detach-keys', 'ctrl-pp', 'ticker');
    expect(bad.code).toBe(2);
  });
});
