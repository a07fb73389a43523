import { posix } from 'node:path';
import type { ContainerConfig } from '../config.js';
import { UsageError } from '../../util/errors.js';

/** Instructions `import --change` accepts (the set `docker import --change` allows). */
export const CHANGE_INSTRUCTIONS = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'USER', 'WORKDIR', 'VOLUME', 'STOPSIGNAL'] as const;

/**
 * Applies Dockerfile-syntax changes (`CMD ["sh"]`, `ENV A=1 B="x y"`, `EXPOSE 80/tcp`, …) to a
 * container config, returning a new object. CMD/ENTRYPOINT/VOLUME take the JSON (exec) form or
 * the shell form (CMD/ENTRYPOINT become `/bin/sh -c "<text>"`). Throws UsageError
 * INVALID_ARGUMENT naming the change for anything else.
 */
export function applyChanges(base: ContainerConfig, changes: readonly string[]): ContainerConfig {
  const cfg: ContainerConfig = structuredClone(base);
  for (const change of changes) {
    const m = /^\s*([A-Za-z]+)(?:\s+([\s\S]*))?$/.exec(change);
    if (!m) throw new UsageError('INVALID_ARGUMENT', `invalid change ${JSON.stringify(change)}`);
    const instr = m[1]!.toUpperCase();
    const rest = (m[2] ?? '').trim();
    const fail = (why: string): never => {
      throw new UsageError('INVALID_ARGUMENT', `change ${JSON.stringify(change)}: ${why}`);
    };
    if (!(CHANGE_INSTRUCTIONS as readonly string[]).includes(instr)) fail(`${instr} is not supported (allowed: ${CHANGE_INSTRUCTIONS.join(', ')})`);
    if (!rest && instr !== 'CMD' && instr !== 'ENTRYPOINT') fail(`${instr} needs an argument`);
    switch (instr) {
      case 'CMD':
      case 'ENTRYPOINT': {
        const v = jsonArray(rest) ?? (rest ? ['/bin/sh', '-c', rest] : []);
        if (instr === 'CMD') cfg.Cmd = v;
        else {
          cfg.Entrypoint = v;
          // Docker: setting ENTRYPOINT resets a CMD inherited from the base.
        }
        break;
      }
      case 'ENV': {
        const env = [...(cfg.Env ?? [])];
        for (const [k, v] of keyValues(rest, fail, true)) {
          const i = env.findIndex((e) => e.split('=')[0] === k);
          if (i >= 0) env[i] = `${k}=${v}`;
          else env.push(`${k}=${v}`);
        }
        cfg.Env = env;
        break;
      }
      case 'LABEL': {
        const labels = { ...(cfg.Labels ?? {}) };
        for (const [k, v] of keyValues(rest, fail, false)) labels[k] = v;
        cfg.Labels = labels;
        break;
      }
      case 'EXPOSE': {
        const ports = { ...(cfg.ExposedPorts ?? {}) };
        for (const w of words(rest, fail)) {
          const pm = /^(\d{1,5})(?:-(\d{1,5}))?(?:\/(tcp|udp|sctp))?$/i.exec(w);
          if (!pm) fail(`invalid port ${JSON.stringify(w)}`);
          const lo = Number(pm![1]);
          const hi = pm![2] ? Number(pm![2]) : lo;
          if (lo < 1 || hi > 65535 || hi < lo) fail(`invalid port range ${JSON.stringify(w)}`);
          const proto = (pm![3] ?? 'tcp').toLowerCase();
          for (let p = lo; p <= hi; p++) ports[`${p}/${proto}`] = {};
        }
        cfg.ExposedPorts = ports;
        break;
      }
      case 'USER':
        cfg.User = single(rest, fail);
        break;
      case 'WORKDIR': {
        const w = single(rest, fail);
        cfg.WorkingDir = posix.isAbsolute(w) ? posix.normalize(w) : posix.join(cfg.WorkingDir || '/', w);
        break;
      }
      case 'STOPSIGNAL':
        cfg.StopSignal = single(rest, fail);
        break;
      case 'VOLUME': {
        const vols = { ...(cfg.Volumes ?? {}) };
        for (const v of jsonArray(rest) ?? words(rest, fail)) {
          if (!v) fail('empty volume path');
          vols[v] = {};
        }
        cfg.Volumes = vols;
        break;
      }
    }
  }
  return cfg;
}

function jsonArray(s: string): string[] | undefined {
  if (!s.startsWith('[')) return undefined;
  try {
    const v = JSON.parse(s) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  } catch {
    /* not JSON: shell form, like the Dockerfile parser */
  }
  return undefined;
}

/** Splits on unquoted whitespace; handles '…', "…" and backslash escapes. */
function words(s: string, fail: (why: string) => never): string[] {
  const out: string[] = [];
  let cur = '';
  let has = false;
  let q: '"' | "'" | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (q) {
      if (c === q) q = undefined;
      else if (c === '\\' && q === '"' && i + 1 < s.length) cur += s[++i];
      else cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      q = c;
      has = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      has = true;
    } else if (/\s/.test(c)) {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += c;
      has = true;
    }
  }
  if (q) fail('unterminated quote');
  if (has) out.push(cur);
  return out;
}

function keyValues(s: string, fail: (why: string) => never, legacy: boolean): [string, string][] {
  const ws = words(s, fail);
  if (ws.length === 0) fail('needs key=value');
  if (!ws[0]!.includes('=')) {
    // Legacy form: `ENV KEY value with spaces`.
    if (!legacy && ws.length < 2) fail('needs key=value');
    const key = ws[0]!;
    const value = s.trim().slice(s.trim().indexOf(key) + key.length).trim();
    return [[key, words(value, fail).join(' ')]];
  }
  return ws.map((w) => {
    const i = w.indexOf('=');
    if (i <= 0) fail(`${JSON.stringify(w)} is not key=value`);
    return [w.slice(0, i), w.slice(i + 1)];
  });
}

function single(s: string, fail: (why: string) => never): string {
  const ws = words(s, fail);
  if (ws.length !== 1) fail('takes exactly one argument');
  return ws[0]!;
}
