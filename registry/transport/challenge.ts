/**
 * WWW-Authenticate parsing (RFC 7235 §4.1, with the quoted-string rules of RFC 7230 §3.2.6) and
 * the registry ping (distribution-spec: `GET /v2/` tells which auth scheme the registry uses).
 */

/** One authentication challenge: scheme lower-cased, parameter names lower-cased. */
export interface Challenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/**
 * Parses one or more WWW-Authenticate header values into challenges, e.g.
 * `Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"`.
 * Malformed parts are skipped rather than thrown on: registries send odd headers.
 */
export function parseWwwAuthenticate(values: string | readonly string[]): Challenge[] {
  const out: Challenge[] = [];
  for (const v of typeof values === 'string' ? [values] : values) parseOne(v, out);
  return out;
}

function parseOne(s: string, out: Challenge[]): void {
  let i = 0;
  const n = s.length;
  const skipWs = (): void => {
    while (i < n && (s[i] === ' ' || s[i] === '\t')) i++;
  };
  const token = (): string => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z/]/.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  let cur: { scheme: string; params: Record<string, string> } | undefined;
  while (i < n) {
    skipWs();
    if (s[i] === ',') {
      i++;
      continue;
    }
    const start = i;
    const tok = token();
    if (!tok) {
      i++;
      continue;
    }
    skipWs();
    if (s[i] === '=' && cur) {
      i++;
      skipWs();
      let value = '';
      if (s[i] === '"') {
        i++;
        while (i < n && s[i] !== '"') {
          if (s[i] === '\\' && i + 1 < n) i++;
          value += s[i];
          i++;
        }
        i++;
      } else {
        const vs = i;
        while (i < n && s[i] !== ',' && s[i] !== ' ') i++;
        value = s.slice(vs, i);
      }
      cur.params[tok.toLowerCase()] = value;
      continue;
    }
    if (s[i] === '=' && !cur) {
      // token68 or a param without a scheme: skip to the next comma
      while (i < n && s[i] !== ',') i++;
      continue;
    }
    void start;
    cur = { scheme: tok.toLowerCase(), params: {} };
    out.push(cur);
  }
}

/** The strongest challenge we support: bearer over basic; undefined when none is usable. */
export function pickChallenge(cs: readonly Challenge[]): Challenge | undefined {
  return cs.find((c) => c.scheme === 'bearer') ?? cs.find((c) => c.scheme === 'basic');
}
