import { describe, expect, it } from 'vitest';
import type { ContainerConfig } from '../../../src/oci/config.js';
import { DockerfileError } from '../../../builder/dockerfile/errors.js';
import { parseDockerfile } from '../../../builder/dockerfile/parser.js';
import { parseInstructions } from '../../../builder/dockerfile/parse-instructions.js';
import { goDuration, goHealthcheck } from '../../../builder/convert/resolve.js';
import { planStages, resolveStages, type PlanOptions, type RunStep, type CopyStep, type StageGraph } from '../../../builder/convert/index.js';

const amd64 = { os: 'linux', architecture: 'amd64' };
const arm64 = { os: 'linux', architecture: 'arm64', variant: 'v8' };

function plan(text: string, opts: Partial<PlanOptions> = {}): StageGraph {
  const res = parseDockerfile(text);
  return planStages(parseInstructions(res.ast), { targetPlatform: arm64, buildPlatform: amd64, escapeToken: res.escapeToken, ...opts });
}

const images: Record<string, ContainerConfig> = {
  'golang:1.22': { Env: ['PATH=/usr/local/go/bin:/usr/bin', 'GOPATH=/go'], WorkingDir: '/go' },
  'busybox': { Env: ['PATH=/bin'], Cmd: ['sh'] },
  'busybox:1.36': { Env: ['PATH=/bin'], Cmd: ['sh'] },
  'onbuild-base': { Env: ['PATH=/bin'], OnBuild: ['RUN echo from trigger', 'ENV TRIGGERED=yes'] },
};

function build(text: string, opts: Partial<PlanOptions> = {}) {
  const g = plan(text, opts);
  return { g, r: resolveStages(g, (ref) => images[ref]) };
}

function runs(text: string, opts: Partial<PlanOptions> = {}): RunStep[] {
  return [...build(text, opts).r.target.steps].filter((s): s is RunStep => s.kind === 'RUN');
}

function expectError(fn: () => unknown, msg: string): DockerfileError {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(DockerfileError);
  expect((err as Error).message).toBe(msg);
  return err as DockerfileError;
}

describe('ARG and ENV scoping', () => {
  it('uses global ARGs in FROM and needs re-declaration inside the stage', () => {
    const { g, r } = build('ARG TAG=1.36\nFROM busybox:${TAG}\nRUN echo $TAG\nARG TAG\nRUN echo $TAG\n');
    expect(g.stages[0]!.baseName).toBe('busybox:1.36');
    const [before, after] = [...r.target.steps].filter((s): s is RunStep => s.kind === 'RUN');
    expect(before!.env).not.toContain('TAG=1.36');
    expect(after!.env).toContain('TAG=1.36');
  });
  it('lets --build-arg override meta ARG defaults and in-stage ARG defaults', () => {
    const { g, r } = build('ARG TAG=1.0\nFROM busybox:${TAG}\nARG MODE=debug\nRUN echo $MODE\n', { buildArgs: { TAG: '1.36', MODE: 'release' } });
    expect(g.stages[0]!.baseName).toBe('busybox:1.36');
    expect((r.target.steps[1] as RunStep).env).toContain('MODE=release');
  });
  it('expands an ENV instruction with the values from before it', () => {
    const { r } = build('FROM busybox\nENV A=1\nENV A=2 B=$A\nENV PATH=/opt/bin:$PATH\n');
    expect(r.target.config.Env).toEqual(['PATH=/opt/bin:/bin', 'A=2', 'B=1']);
  });
  it('inherits ENV and ARG state through FROM <stage>, but not the config of unrelated stages', () => {
    const { r } = build('FROM busybox AS base\nENV APP_HOME=/app\nARG V=3\nFROM base AS test\nRUN echo $APP_HOME $V\nFROM busybox\nRUN echo $APP_HOME\n', { target: 'test' });
    const run = r.target.steps.find((s): s is RunStep => s.kind === 'RUN')!;
    expect(run.env).toEqual(expect.arrayContaining(['APP_HOME=/app', 'V=3']));
    expect(r.target.config.Env).toContain('APP_HOME=/app');
    expect(r.target.config.Env).not.toContain('V=3');
  });
  it('provides platform ARGs in FROM and, when declared, in stages', () => {
    const { g, r } = build('FROM --platform=$BUILDPLATFORM golang:1.22 AS b\nARG TARGETARCH TARGETPLATFORM BUILDOS\nRUN echo $TARGETARCH\n');
    expect(g.stages[0]!.platform).toEqual(amd64);
    const run = r.target.steps.find((s): s is RunStep => s.kind === 'RUN')!;
    expect(run.env).toEqual(expect.arrayContaining(['TARGETARCH=arm64', 'TARGETPLATFORM=linux/arm64/v8', 'BUILDOS=linux']));
  });
  it('expands ARG defaults with earlier ARGs and ENV', () => {
    const { r } = build('FROM golang:1.22\nARG DIR=$GOPATH/src\nWORKDIR $DIR\n');
    expect(r.target.config.WorkingDir).toBe('/go/src');
  });
  it('passes proxy build-args to RUN without storing them and without warning', () => {
    const { r } = build('FROM busybox\nRUN true\n', { buildArgs: { HTTP_PROXY: 'http://p:3128', UNUSED: 'x', ALSO: 'y' } });
    const run = r.target.steps[0] as RunStep;
    expect(run.proxyEnv).toEqual(['HTTP_PROXY=http://p:3128']);
    expect(run.env.join(' ')).not.toContain('PROXY');
    expect(r.warnings.map((w) => w.short)).toEqual(['one or more build-args [ALSO UNUSED] were not consumed']);
  });
  it('counts an ARG in an unreachable stage as not consumed', () => {
    const { r } = build('FROM busybox AS other\nARG ONLY_OTHER\nFROM busybox\nARG USED\n', { buildArgs: { ONLY_OTHER: '1', USED: '2' } });
    expect(r.warnings.map((w) => w.short)).toEqual(['one or more build-args [ONLY_OTHER] were not consumed']);
  });
  it('records the build ARGs in RUN history like buildkit', () => {
    const run = runs('FROM busybox\nARG A=1\nRUN echo $A\n')[0]!;
    expect(run.history.createdBy).toBe('RUN |1 A=1 /bin/sh -c echo $A # buildkit');
    expect(run.args).toEqual(['/bin/sh', '-c', 'echo $A']);
  });
});

describe('stage graph', () => {
  const text = [
    'ARG BASE=busybox',
    'FROM ${BASE} AS deps',
    'FROM golang:1.22 AS build',
    'COPY --from=deps /a /a',
    'RUN --mount=type=cache,target=/c --mount=from=tools,target=/t true',
    'FROM busybox AS tools',
    'FROM build AS test',
    'FROM scratch',
    'COPY --from=1 /out /out',
    'COPY --from=alpine:3 /etc/os-release /',
  ].join('\n');

  it('resolves FROM <stage>, COPY --from by name/index/image and mount from=', () => {
    const g = plan(text);
    expect(g.stages.map((s) => s.base)).toEqual([
      { kind: 'image', ref: 'busybox' },
      { kind: 'image', ref: 'golang:1.22' },
      { kind: 'image', ref: 'busybox' },
      { kind: 'stage', index: 1 },
      { kind: 'scratch' },
    ]);
    expect(g.stages[1]!.deps.map((d) => [d.via, d.source])).toEqual([
      ['from', { kind: 'image', ref: 'golang:1.22' }],
      ['copy', { kind: 'stage', index: 0 }],
      ['mount', { kind: 'stage', index: 2 }],
    ]);
    expect(g.stages[4]!.deps.map((d) => d.source)).toEqual([{ kind: 'stage', index: 1 }, { kind: 'image', ref: 'alpine:3' }]);
    expect(g.target).toBe(4);
    expect(g.order).toEqual([0, 2, 1, 4]);
    expect(g.stages.map((s) => s.reachable)).toEqual([true, true, true, false, true]);
  });
  it('selects a target by name', () => {
    const g = plan(text, { target: 'TEST' });
    expect(g.target).toBe(3);
    expect(g.order).toEqual([0, 2, 1, 3]);
  });
  it('rejects an unknown target with a suggestion', () => {
    expectError(() => plan(text, { target: 'tset' }), 'target stage "tset" could not be found (did you mean test?)');
  });
  it('does not treat FROM <later stage> as a stage (buildkit only looks backwards)', () => {
    const g = plan('FROM later AS first\nFROM busybox AS later\n');
    expect(g.stages[0]!.base).toEqual({ kind: 'image', ref: 'later' });
  });
  it('detects cycles through COPY --from with a located error', () => {
    const e = expectError(
      () => plan('FROM busybox AS a\nCOPY --from=b /x /x\nFROM busybox AS b\nCOPY --from=a /y /y\n'),
      'Dockerfile:4:1: circular dependency detected on stage: a',
    );
    expect(e.code).toBe('STAGE_CYCLE');
  });
  it('rejects an out-of-range stage index', () => {
    expectError(() => plan('FROM busybox\nCOPY --from=3 /x /x\n'), 'Dockerfile:2:1: invalid stage index 3');
  });
  it('rejects variables in COPY --from', () => {
    expectError(
      () => plan('FROM busybox\nARG S=x\nCOPY --from=$S /x /x\n'),
      'Dockerfile:3:1: variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround',
    );
  });
  it('rejects an empty base name', () => {
    expectError(() => plan('ARG IMG\nFROM $IMG\n'), 'Dockerfile:2:1: base name ($IMG) should not be blank');
  });
  it('suggests a platform ARG for an empty --platform', () => {
    expectError(() => plan('FROM --platform=$BUILDPLATFROM busybox\n'), 'Dockerfile:1:1: empty platform value from expression $BUILDPLATFROM (did you mean BUILDPLATFORM?)');
  });
});

describe('resolved steps', () => {
  it('resolves WORKDIR, COPY destinations, USER and heredocs', () => {
    const { r } = build(
      ['FROM golang:1.22', 'WORKDIR src', 'WORKDIR ../app/', 'USER 1000', 'COPY a.go ./', 'COPY b.go sub', 'ARG V=9', 'COPY <<EOF <<\'RAW\' /etc/', 'v=$V', 'EOF', 'v=$V', 'RAW'].join('\n') + '\n',
    );
    const copies = r.target.steps.filter((s): s is CopyStep => s.kind === 'COPY');
    expect(r.target.config.WorkingDir).toBe('/go/app');
    expect(copies.map((c) => c.dest)).toEqual(['/go/app/', '/go/app/sub', '/etc/']);
    expect(copies[0]!.user).toBe('1000');
    expect(copies[2]!.contents).toEqual([{ path: 'EOF', data: 'v=9\n' }, { path: 'RAW', data: 'v=$V\n' }]);
  });
  it('runs single heredocs through the shell and shebang heredocs as files', () => {
    const [plain, shebang, complex] = runs('FROM busybox\nRUN <<EOF\necho hi\nEOF\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\nRUN cat <<A\nx\nA\n');
    expect(plain!.args).toEqual(['/bin/sh', '-c', 'echo hi\n']);
    expect(shebang!.args).toEqual(['/bin/sh', '-c', '/dev/pipes/EOF']);
    expect(shebang!.inlineFiles).toEqual([{ path: '/dev/pipes/EOF', data: '#!/usr/bin/env python3\nprint(1)\n', mode: 0o755 }]);
    expect(complex!.args).toEqual(['/bin/sh', '-c', 'cat <<A\nx\nA']);
  });
  it('expands mount options and resolves their sources', () => {
    const [run] = runs('FROM busybox AS tools\nFROM busybox\nARG CACHE=/root/.cache\nRUN --mount=type=cache,target=$CACHE,id=c1 --mount=type=bind,from=tools,source=/bin,target=/t --network=none true\n');
    expect(run!.mounts.map((m) => [m.type, m.target, m.readOnly, m.fromSource])).toEqual([
      ['cache', '/root/.cache', false, { kind: 'context' }],
      ['bind', '/t', true, { kind: 'stage', index: 0 }],
    ]);
    expect(run!.network).toBe('none');
  });
  it('applies SHELL, CMD, ENTRYPOINT, LABEL, EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK to the config', () => {
    const { r } = build(
      [
        'FROM busybox',
        'ARG P=8080',
        'SHELL ["/bin/bash", "-c"]',
        'CMD echo hi',
        'ENTRYPOINT ["/entry"]',
        'LABEL a=$P "b c"=d',
        'EXPOSE $P 53/udp 7000-7001',
        'VOLUME /data',
        'STOPSIGNAL SIGINT',
        'HEALTHCHECK --interval=5s CMD true',
      ].join('\n') + '\n',
    );
    const c = r.target.config;
    expect(c.Cmd).toEqual(['/bin/bash', '-c', 'echo hi']);
    expect(c.Entrypoint).toEqual(['/entry']);
    expect(c.Shell).toEqual(['/bin/bash', '-c']);
    expect(c.Labels).toEqual({ a: '8080', 'b c': 'd' });
    expect(Object.keys(c.ExposedPorts!).sort()).toEqual(['53/udp', '7000/tcp', '7001/tcp', '8080/tcp']);
    expect(c.Volumes).toEqual({ '/data': {} });
    expect(c.StopSignal).toBe('SIGINT');
    expect(c.Healthcheck).toEqual({ Test: ['CMD-SHELL', 'true'], Interval: 5_000_000_000 });
  });
  it('resets the base image CMD when ENTRYPOINT is set without CMD in the stage', () => {
    const { r } = build('FROM busybox\nENTRYPOINT ["/e"]\n');
    expect(r.target.config.Cmd).toBeNull();
  });
  it('runs the base image ONBUILD triggers first and stores this stage\'s own', () => {
    const { r } = build('FROM onbuild-base\nONBUILD RUN echo later\nRUN echo mine\n');
    const s = r.target.steps;
    expect(s[0]!.onbuild && s[0]!.kind === 'RUN' && (s[0] as RunStep).args[2]).toBe('echo from trigger');
    expect(r.target.config.Env).toContain('TRIGGERED=yes');
    expect(r.target.config.OnBuild).toEqual(['RUN echo later']);
    expect(s[0]!.location.line).toBe(1);
  });
  it('locates expansion errors at the instruction', () => {
    expectError(() => build('FROM busybox\nWORKDIR ${NOPE:?must be set}\n'), 'Dockerfile:2:1: failed to process "${NOPE:?must be set}": NOPE: must be set');
  });
});

describe('convertDockerfile', () => {
  it('resolves each external base once per platform and merges warnings', async () => {
    const { convertDockerfile } = await import('../../../builder/convert/index.js');
    const asked: string[] = [];
    const res = await convertDockerfile(
      '# syntax=docker/dockerfile:1\nFROM busybox AS a\nFROM busybox AS b\nFROM --platform=linux/amd64 busybox AS c\nFROM scratch\nCOPY --from=a / /\nCOPY --from=b / /\nCOPY --from=c / /\n',
      { targetPlatform: arm64, buildPlatform: amd64, buildArgs: { NOPE: '1' } },
      async (ref, p) => {
        asked.push(`${ref} ${p.architecture}`);
        return images[ref]!;
      },
    );
    expect(asked.sort()).toEqual(['busybox amd64', 'busybox arm64']);
    expect(res.build.target.index).toBe(3);
    expect(res.warnings.map((w) => w.short)).toEqual([
      'syntax directive "docker/dockerfile:1" ignored: external frontends are not loaded, the built-in Dockerfile frontend is used',
      'one or more build-args [NOPE] were not consumed',
    ]);
  });
});

describe('ONBUILD triggers of a parent stage', () => {
  it('make COPY --from in a trigger a dependency of the child stage and run first', () => {
    const { g, r } = build('FROM busybox AS assets\nFROM busybox AS tmpl\nONBUILD COPY --from=assets /etc/hosts /h\nFROM tmpl\nRUN true\n');
    expect(g.stages[2]!.deps.map((d) => [d.via, d.source])).toEqual([
      ['from', { kind: 'stage', index: 1 }],
      ['copy', { kind: 'stage', index: 0 }],
    ]);
    expect(g.order).toEqual([1, 0, 2]);
    const first = r.target.steps[0] as CopyStep;
    expect(first).toMatchObject({ kind: 'COPY', onbuild: true, from: { kind: 'stage', index: 0 }, dest: '/h' });
    expect(r.target.config.OnBuild).toBeNull();
  });
});

describe('buildkit history text of HEALTHCHECK', () => {
  it("formats durations like Go's time.Duration.String", () => {
    const cases: [number, string][] = [
      [0, '0s'],
      [999, '999ns'],
      [1500, '1.5µs'],
      [100_000_000, '100ms'],
      [5e9, '5s'],
      [1.5e9, '1.5s'],
      [60e9, '1m0s'],
      [90e9, '1m30s'],
      [3600e9, '1h0m0s'],
      [3723.5e9, '1h2m3.5s'],
    ];
    for (const [n, s] of cases) expect(goDuration(n), String(n)).toBe(s);
  });
  it("is Go's %q of the health config, StartInterval before Retries", () => {
    expect(goHealthcheck({ Test: ['CMD-SHELL', 'true'], Interval: 5e9 })).toBe(`&{["CMD-SHELL" "true"] "5s" "0s" "0s" "0s" '\\x00'}`);
    expect(goHealthcheck({ Test: ['CMD', 'a"b'], Timeout: 3e9, Retries: 3 })).toBe(`&{["CMD" "a\\"b"] "0s" "3s" "0s" "0s" '\\x03'}`);
  });
});
