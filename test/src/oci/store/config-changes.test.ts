import { describe, expect, it } from 'vitest';
import { applyChanges } from '../../../../src/oci/store/config-changes.js';
import { hasCode } from '../../../../src/util/errors.js';

describe('applyChanges (docker import --change)', () => {
  it('CMD and ENTRYPOINT take the JSON form or the shell form', () => {
    expect(applyChanges({}, ['CMD ["/bin/echo", "a b"]'])).toEqual({ Cmd: ['/bin/echo', 'a b'] });
    expect(applyChanges({}, ['CMD echo hi && ls'])).toEqual({ Cmd: ['/bin/sh', '-c', 'echo hi && ls'] });
    expect(applyChanges({}, ['ENTRYPOINT ["/init"]', 'cmd ["--flag"]'])).toEqual({ Entrypoint: ['/init'], Cmd: ['--flag'] });
    // Broken JSON falls back to the shell form, like the Dockerfile parser.
    expect(applyChanges({}, ['CMD [ "broken'])).toEqual({ Cmd: ['/bin/sh', '-c', '[ "broken'] });
  });

  it('ENV (both forms) replaces existing keys; LABEL keeps quotes and spaces right', () => {
    const c = applyChanges({ Env: ['PATH=/bin', 'A=0'] }, ['ENV A=1 B="x y" C=a\\ b', 'ENV LEGACY value with spaces', 'LABEL org.example.x="hello world" y=2']);
    expect(c.Env).toEqual(['PATH=/bin', 'A=1', 'B=x y', 'C=a b', 'LEGACY=value with spaces']);
    expect(c.Labels).toEqual({ 'org.example.x': 'hello world', y: '2' });
  });

  it('EXPOSE, USER, WORKDIR, VOLUME, STOPSIGNAL', () => {
    const c = applyChanges({ WorkingDir: '/srv' }, ['EXPOSE 80 53/udp 8000-8001', 'USER 1000:1000', 'WORKDIR app', 'VOLUME ["/data", "/logs"]', 'VOLUME /cache', 'STOPSIGNAL SIGTERM']);
    expect(c).toEqual({
      ExposedPorts: { '80/tcp': {}, '53/udp': {}, '8000/tcp': {}, '8001/tcp': {} },
      User: '1000:1000',
      WorkingDir: '/srv/app',
      Volumes: { '/data': {}, '/logs': {}, '/cache': {} },
      StopSignal: 'SIGTERM',
    });
  });

  it('rejects unsupported instructions and malformed arguments, naming the change', () => {
    for (const bad of ['RUN echo', 'EXPOSE 99999', 'EXPOSE http', 'USER a b', 'ENV', 'LABEL novalue', 'ENV A="unterminated']) {
      let err: unknown;
      try {
        applyChanges({}, [bad]);
      } catch (e) {
        err = e;
      }
      expect(hasCode(err, 'INVALID_ARGUMENT'), bad).toBe(true);
      expect((err as Error).message).toContain(JSON.stringify(bad));
    }
  });

  it('does not modify its input', () => {
    const base = { Env: ['A=1'] };
    applyChanges(base, ['ENV A=2']);
    expect(base).toEqual({ Env: ['A=1'] });
  });
});
