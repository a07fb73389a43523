/** `--cache-from` / `--cache-to` values (BuildKit's syntax): what is accepted, and the usage errors. */
import { describe, expect, it } from 'vitest';
import { parseCacheSpec } from '../../../src/cli/wiring/build-cache.js';
import { formatReference } from '../../../src/oci/reference.js';
import { UsageError } from '../../../src/util/errors.js';

describe('parseCacheSpec', () => {
  it('type=registry,ref=R[,mode=…][,ignore-error=…]; mode defaults to min', () => {
    const to = parseCacheSpec('type=registry,ref=127.0.0.1:5000/app:cache,mode=max', '--cache-to');
    expect(formatReference(to.ref)).toBe('127.0.0.1:5000/app:cache');
    expect(to).toMatchObject({ type: 'registry', mode: 'max', ignoreError: false });
    expect(parseCacheSpec('ref=reg.example/app:c,type=registry', '--cache-to').mode).toBe('min');
    expect(parseCacheSpec('type=registry,ref=reg.example/app:c,ignore-error=true', '--cache-to').ignoreError).toBe(true);
    // BuildKit keys that change nothing here are accepted
    expect(parseCacheSpec('type=registry,ref=reg.example/app:c,image-manifest=true,oci-mediatypes=true', '--cache-to').mode).toBe('min');
  });

  it('--cache-from takes a bare reference (buildx) and a digest', () => {
    expect(formatReference(parseCacheSpec('reg.example/app:cache', '--cache-from').ref)).toBe('reg.example/app:cache');
    const d = `sha256:${'a'.repeat(64)}`;
    expect(parseCacheSpec(`type=registry,ref=reg.example/app@${d}`, '--cache-from').ref.digest).toBe(d);
  });

  it.each([
    ['--cache-to', 'reg.example/app:cache', /expected type=registry,ref=REF/],
    ['--cache-to', 'type=local,dest=/tmp/x', /--cache-to type=local is not supported \(only type=registry\)/],
    ['--cache-from', 'type=gha', /--cache-from type=gha is not supported/],
    ['--cache-to', 'type=registry', /ref=REF is required/],
    ['--cache-to', 'type=registry,ref=reg.example/app:c,mode=all', /invalid --cache-to mode "all": use min or max/],
    ['--cache-from', 'type=registry,ref=reg.example/app:c,mode=max', /unknown key "mode"/],
    ['--cache-to', 'type=registry,ref=reg.example/app:c,compression=zstd', /unknown key "compression"/],
    ['--cache-to', 'type=registry,ref=reg.example/app:c,ignore-error=yes', /ignore-error "yes": use true or false/],
    ['--cache-to', 'type=registry,ref=Not A Ref', /invalid --cache-to ref "Not A Ref"/],
    ['--cache-to', `type=registry,ref=reg.example/app@sha256:${'a'.repeat(64)}`, /written under a tag, not a digest/],
    ['--cache-to', 'type=registry,,ref=x/y:z', /"" is not KEY=VALUE/],
  ] as const)('%s %s is a usage error', (flag, spec, message) => {
    let err: unknown;
    try {
      parseCacheSpec(spec, flag);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as UsageError).message).toMatch(message);
  });
});
