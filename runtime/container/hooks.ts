/**
 * The OCI lifecycle hooks tsbuild runs itself, in the runtime's namespaces (runtime-spec
 * config.md#posix-platform-hooks): prestart and createRuntime (during create, on the helper's
 * hooks-request), poststart (at the end of start) and poststop (at the end of delete). The
 * createContainer and startContainer hooks run inside the container, in the native helper.
 */
import { spawn } from 'node:child_process';
import { RuntimeError } from '../errors.js';
import type { Hook, Hooks } from '../spec/types.js';
import type { ContainerState } from './state.js';

export type { Hook, Hooks } from '../spec/types.js';

/** Hook phases. */
export type HookPhase = keyof Hooks;

/** Hooks in config.json order; INVALID_SPEC when one is malformed. */
export function hooksFromSpec(raw: unknown): Hooks {
  if (raw === undefined || raw === null) return {};
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new RuntimeError('INVALID_SPEC', 'config.json: hooks is not an object', { step: 'config' });
  const out: Hooks = {};
  for (const [phase, list] of Object.entries(raw as Record<string, unknown>)) {
    if (!['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'].includes(phase)) continue;
    if (!Array.isArray(list)) throw new RuntimeError('INVALID_SPEC', `config.json: hooks.${phase} is not an array`, { step: 'config' });
    out[phase as HookPhase] = list.map((h: unknown, i) => {
      const o = h as Partial<Hook> | null;
      if (!o || typeof o.path !== 'string' || !o.path.startsWith('/')) throw new RuntimeError('INVALID_SPEC', `config.json: hooks.${phase}[${i}].path must be an absolute path`, { step: 'config' });
      if (o.timeout !== undefined && !(Number.isInteger(o.timeout) && o.timeout > 0)) throw new RuntimeError('INVALID_SPEC', `config.json: hooks.${phase}[${i}].timeout must be a positive integer`, { step: 'config' });
      return { path: o.path, ...(Array.isArray(o.args) ? { args: o.args.map(String) } : {}), ...(Array.isArray(o.env) ? { env: o.env.map(String) } : {}), ...(o.timeout ? { timeout: o.timeout } : {}) };
    });
  }
  return out;
}

function envObject(env: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of env) {
    const i = e.indexOf('=');
    if (i < 0) out[e] = '';
    else out[e.slice(0, i)] = e.slice(i + 1);
  }
  return out;
}

/** Runs one hook with the state JSON on stdin; rejects (SETUP_FAILED, step hooks) on failure or timeout. */
export function runHook(hook: Hook, phase: HookPhase, state: ContainerState): Promise<void> {
  return new Promise((resolve, reject) => {
    const args = hook.args ?? [hook.path];
    const child = spawn(hook.path, args.slice(1), { argv0: args[0] ?? hook.path, env: envObject(hook.env ?? []), stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    let timedOut = false;
    child.stderr!.on('data', (b: Buffer) => {
      if (stderr.length < 4096) stderr += b.toString('utf8');
    });
    // a hook that does not read its stdin is fine
    child.stdin!.on('error', () => {});
    child.stdin!.end(JSON.stringify(state));
    const timer = hook.timeout ? setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, hook.timeout * 1000) : undefined;
    const what = `${phase} hook ${hook.path}`;
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new RuntimeError('SETUP_FAILED', `running ${what}`, { cause: e, step: 'hooks' }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) return reject(new RuntimeError('SETUP_FAILED', `${what} timed out after ${hook.timeout} s`, { step: 'hooks' }));
      if (code === 0) return resolve();
      const detail = stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' ')}` : '';
      reject(new RuntimeError('SETUP_FAILED', `${what} ${signal ? `was killed by ${signal}` : `exited with status ${code}`}${detail}`, { step: 'hooks' }));
    });
  });
}

/** Runs the hooks of `phase` in order; the first failure rejects (prestart, createRuntime). */
export async function runHooks(hooks: Hooks | undefined, phase: HookPhase, state: ContainerState): Promise<void> {
  for (const h of hooks?.[phase] ?? []) await runHook(h, phase, state);
}

/**
 * Runs every hook of `phase` (poststart, poststop): a failure does not stop the others nor the
 * lifecycle; each is passed to `warn`.
 */
export async function runHooksWarn(hooks: Hooks | undefined, phase: HookPhase, state: ContainerState, warn: (msg: string) => void): Promise<void> {
  for (const h of hooks?.[phase] ?? []) {
    await runHook(h, phase, state).catch((e: unknown) => warn((e as Error).message));
  }
}
