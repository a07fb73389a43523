import { RuntimeError } from './errors.js';
import type { User } from './types.js';

/** One /etc/passwd entry. */
export interface PasswdEntry { name: string; uid: number; gid: number; home: string; shell: string }
/** One /etc/group entry. */
export interface GroupEntry { name: string; gid: number; members: string[] }

/** Parses /etc/passwd text; malformed lines are skipped like libc does. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 4 || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) continue;
    out.push({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '', shell: f[6] ?? '' });
  }
  return out;
}

/** Parses /etc/group text. */
export function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 3 || !/^\d+$/.test(f[2]!)) continue;
    out.push({ name: f[0]!, gid: Number(f[2]), members: f[3] ? f[3].split(',').filter(Boolean) : [] });
  }
  return out;
}

/** The resolved process user plus its home directory (for HOME). */
export interface ExecUser extends User { home: string }

const MAX_ID = 2 ** 31 - 1;

function numeric(s: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return n <= MAX_ID ? n : undefined;
}

/**
 * Resolves a Docker `--user` value (`name`, `uid`, `name:group`, `uid:gid`, and mixes) against
 * the image's /etc/passwd and /etc/group, with the rules of runc's `GetExecUser`:
 * a numeric uid needs no passwd entry (gid then defaults to 0, home to /); a name must exist;
 * an explicit group replaces the primary gid and disables supplementary groups, otherwise the
 * groups listing the user's name become `additionalGids`. Throws RuntimeError INVALID_USER.
 */
export function resolveUser(spec: string, passwdText: string | undefined, groupText: string | undefined): ExecUser {
  const s = spec === '' ? '0' : spec;
  const colon = s.indexOf(':');
  const userArg = colon < 0 ? s : s.slice(0, colon);
  const groupArg = colon < 0 ? undefined : s.slice(colon + 1);
  if (userArg === '' || groupArg === '') throw new RuntimeError('INVALID_USER', `invalid user ${JSON.stringify(spec)}`);
  const passwd = passwdText === undefined ? [] : parsePasswd(passwdText);
  const uidNum = numeric(userArg);
  if (uidNum === undefined && /^\d+$/.test(userArg)) throw new RuntimeError('INVALID_USER', `uid ${userArg} of user ${JSON.stringify(spec)} is out of range`);
  const entry = passwd.find((p) => (uidNum === undefined ? p.name === userArg : p.uid === uidNum));
  if (!entry && uidNum === undefined) {
    throw new RuntimeError('INVALID_USER', `unable to find user ${userArg}: no matching entries in passwd file`);
  }
  const out: ExecUser = { uid: uidNum ?? entry!.uid, gid: entry?.gid ?? 0, home: entry?.home || '/' };
  const groups = groupText === undefined ? [] : parseGroup(groupText);
  if (groupArg !== undefined) {
    const gidNum = numeric(groupArg);
    if (gidNum === undefined && /^\d+$/.test(groupArg)) throw new RuntimeError('INVALID_USER', `gid ${groupArg} of user ${JSON.stringify(spec)} is out of range`);
    if (gidNum !== undefined) out.gid = gidNum;
    else {
      const g = groups.find((x) => x.name === groupArg);
      if (!g) throw new RuntimeError('INVALID_USER', `unable to find group ${groupArg}: no matching entries in group file`);
      out.gid = g.gid;
    }
  } else if (entry) {
    const extra = groups.filter((g) => g.members.includes(entry.name)).map((g) => g.gid);
    const uniq = [...new Set(extra)];
    if (uniq.length) out.additionalGids = uniq;
  }
  return out;
}
