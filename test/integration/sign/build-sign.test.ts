/**
 * `tsbuild build --push --sign --key K --sbom --provenance` in one command, judged by the real
 * cosign v2: `cosign verify` accepts the signature of the pushed digest, `cosign
 * verify-attestation` accepts the SLSA v1 provenance and the SPDX SBOM; another key fails; a wrong
 * password fails before anything is built or pushed.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxRootfs } from '../../helpers/base-images.js';
import { firstReason, needBuiltCli } from '../../helpers/capabilities.js';
import { goTool } from '../../helpers/go-tools.js';
import { registrySkipReason, startRegistry, type TestRegistry } from '../../helpers/registry.js';
import { run, runTsbuild, tsbuildOk, type RunResult } from '../../helpers/tools.js';
import { buildUnavailable } from '../build/harness.js';

const cosign = await goTool('cosign');
const why = firstReason(buildUnavailable(), needBuiltCli(), registrySkipReason(), cosign.skip);
if (why) console.warn(`skip: ${why}`);
const trivy = await goTool('trivy');
const noTrivy = why ?? trivy.skip;

const BASE = 'localhost/test/busybox:latest';
const SECRET = 'never-in-provenance-7f3a';
const PW = 'build-sign-pw';
const DOCKERFILE = [
  `FROM ${BASE} AS final`,
  'ARG VERSION',
  'COPY status /var/lib/dpkg/status',
  'COPY os-release debian_version /etc/',
  'RUN --mount=type=secret,id=tok test -s /run/secrets/tok && echo "$VERSION" > /version',
  'CMD ["cat", "/version"]',
  '',
].join('\n');
// a small dpkg database, so the SBOM has packages to list
const STATUS = ['hello', 'libdemo1'].map((p, i) => `Package: ${p}\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.${i}-2\nDescription: demo\n`).join('\n');
const OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n';

interface Statement {
  _type: string;
  predicateType: string;
  subject: { name: string; digest: { sha256: string } }[];
  predicate: Record<string, unknown>;
}

describe.skipIf(!!why)('build --push --sign --sbom --provenance', () => {
  let reg: TestRegistry;
  let dir = '';
  let root = '';
  let ref = '';
  let digest = '';
  let baseDigest = '';

  const cosignRun = (args: string[]): Promise<RunResult> => run(cosign.path!, args, { env: { HOME: dir, COSIGN_PASSWORD: PW, COSIGN_REPOSITORY: undefined }, cwd: dir });
  const verifyAttestation = (key: string, type: string) => cosignRun(['verify-attestation', '--key', key, '--type', type, '--insecure-ignore-tlog=true', '--allow-insecure-registry', pinned()]);
  const pinned = () => `${ref.replace(/:v1$/, '')}@${digest}`;
  const statements = (r: RunResult): Statement[] =>
    r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(Buffer.from((JSON.parse(l) as { payload: string }).payload, 'base64').toString()) as Statement);

  beforeAll(async () => {
    if (why) return;
    reg = await startRegistry();
    dir = mkdtempSync(join(tmpdir(), 'tsbuild-build-sign-'));
    root = join(dir, 'root');
    await tsbuildOk(['import', await busyboxRootfs(), BASE, '-c', 'CMD ["sh"]'], { root });
    baseDigest = (JSON.parse((await tsbuildOk(['images', '--format', 'json'], { root })).stdout) as { Name: string; Digest: string }[]).find((i) => i.Name === BASE)!.Digest;
    writeFileSync(join(dir, 'Dockerfile'), DOCKERFILE);
    writeFileSync(join(dir, 'status'), STATUS);
    writeFileSync(join(dir, 'os-release'), OS_RELEASE);
    writeFileSync(join(dir, 'debian_version'), '12.5\n');
    await tsbuildOk(['key', 'generate'], { root, cwd: dir, env: { COSIGN_PASSWORD: PW } });
    ref = `${reg.host}/signed/app:v1`;
    const r = await tsbuildOk(
      ['build', '--progress', 'plain', '--push', '--sign', '--key', 'cosign.key', '--sbom', '--provenance=mode=max,builder-id=https://ci.example/jobs/42', '-t', ref, '--target', 'final', '--build-arg', 'VERSION=1.2.3', '--secret', 'id=tok,env=TOK', '.'],
      { root, cwd: dir, env: { COSIGN_PASSWORD: PW, TOK: SECRET, COSIGN_REPOSITORY: undefined }, timeout: 300_000 },
    );
    digest = r.stdout.trim();
  }, 360_000);

  afterAll(async () => {
    await reg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('prints only the pushed digest on stdout', () => {
    expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('cosign verify accepts the signature of the pushed digest', async () => {
    const v = await cosignRun(['verify', '--key', 'cosign.pub', '--insecure-ignore-tlog=true', '--allow-insecure-registry', pinned()]);
    expect(v.code, v.stderr).toBe(0);
    const claims = JSON.parse(v.stdout) as { critical: { identity: { 'docker-reference': string }; image: { 'docker-manifest-digest': string } } }[];
    expect(claims.map((c) => c.critical.image['docker-manifest-digest'])).toEqual([digest]);
    expect(claims[0]!.critical.identity['docker-reference']).toBe(`${reg.host}/signed/app`);
    // by tag too: cosign resolves the tag to the signed digest
    const byTag = await cosignRun(['verify', '--key', 'cosign.pub', '--insecure-ignore-tlog=true', '--allow-insecure-registry', ref]);
    expect(byTag.code, byTag.stderr).toBe(0);
  });

  it('cosign verify-attestation accepts the SLSA v1 provenance: parameters, base image digest, Dockerfile digest, no secret value', async () => {
    const v = await verifyAttestation('cosign.pub', 'slsaprovenance1');
    expect(v.code, v.stderr).toBe(0);
    expect(v.stdout).not.toContain(Buffer.from(SECRET).toString('base64'));
    const st = statements(v);
    expect(st).toHaveLength(1);
    const s = st[0]!;
    expect(JSON.stringify(s)).not.toContain(SECRET);
    expect(s.predicateType).toBe('https://slsa.dev/provenance/v1');
    expect(s.subject[0]!.digest.sha256).toBe(digest.slice('sha256:'.length));
    const p = s.predicate as {
      buildDefinition: { buildType: string; externalParameters: Record<string, unknown>; internalParameters: Record<string, unknown>; resolvedDependencies: { uri?: string; name?: string; digest?: Record<string, string>; content?: string }[] };
      runDetails: { builder: { id: string }; metadata: { invocationId: string; startedOn: string; finishedOn: string } };
    };
    expect(p.buildDefinition.buildType).toMatch(/^https:\/\/tsbuild\./);
    expect(p.buildDefinition.externalParameters).toMatchObject({ dockerfile: 'Dockerfile', target: 'final', buildArgs: { VERSION: '1.2.3' }, secrets: [{ id: 'tok' }] });
    const deps = p.buildDefinition.resolvedDependencies;
    expect(deps.find((d) => d.name === BASE)).toEqual({ uri: 'pkg:docker/localhost/test/busybox@latest?platform=linux%2Famd64', name: BASE, digest: { sha256: baseDigest.slice(7) } });
    const df = deps.find((d) => d.name === 'Dockerfile')!;
    expect(df.digest).toEqual({ sha256: createHash('sha256').update(DOCKERFILE).digest('hex') });
    expect(Buffer.from(df.content!, 'base64').toString()).toBe(DOCKERFILE); // mode=max
    expect(p.runDetails.builder.id).toBe('https://ci.example/jobs/42');
    const { startedOn, finishedOn, invocationId } = p.runDetails.metadata;
    expect(invocationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(Date.parse(finishedOn)).toBeGreaterThanOrEqual(Date.parse(startedOn));
    // the URI form of the type works too
    expect((await verifyAttestation('cosign.pub', 'https://slsa.dev/provenance/v1')).code).toBe(0);
  });

  it('cosign verify-attestation accepts the SPDX SBOM, listing the image\'s dpkg packages', async () => {
    const v = await verifyAttestation('cosign.pub', 'spdxjson');
    expect(v.code, v.stderr).toBe(0);
    const s = statements(v)[0]!;
    expect(s.predicateType).toBe('https://spdx.dev/Document');
    const pkgs = (s.predicate as { packages: { name: string; versionInfo?: string }[] }).packages;
    expect(pkgs.filter((x) => x.name === 'hello' || x.name === 'libdemo1').map((x) => `${x.name}@${x.versionInfo}`).sort()).toEqual(['hello@1.0-2', 'libdemo1@1.1-2']);
  });

  it.skipIf(!!noTrivy)('trivy image scans the pushed image from the registry and finds the same packages (no vulnerability DB needed)', async () => {
    const out = join(dir, 'trivy.cdx.json');
    const t = await run(trivy.path!, ['image', '--insecure', '--cache-dir', join(dir, 'trivy-cache'), '--format', 'cyclonedx', '--output', out, pinned()], { env: { HOME: dir }, timeout: 300_000 });
    expect(t.code, t.stderr).toBe(0);
    const bom = JSON.parse(readFileSync(out, 'utf8')) as { components?: { name: string; version?: string; type: string }[] };
    const comps = bom.components ?? [];
    expect(comps.find((c) => c.type === 'operating-system')?.name).toBe('debian');
    expect(comps.filter((c) => c.type === 'library').map((c) => `${c.name}@${c.version}`).sort()).toEqual(['hello@1.0-2', 'libdemo1@1.1-2']);
  }, 300_000);

  it('another key fails cosign verify and verify-attestation', async () => {
    await tsbuildOk(['key', 'generate', '--output-key-prefix', 'other'], { root, cwd: dir, env: { COSIGN_PASSWORD: PW } });
    const v = await cosignRun(['verify', '--key', 'other.pub', '--insecure-ignore-tlog=true', '--allow-insecure-registry', pinned()]);
    expect(v.code).not.toBe(0);
    expect(v.stderr).toMatch(/no matching signatures|invalid signature/i);
    for (const type of ['slsaprovenance1', 'spdxjson']) {
      const a = await verifyAttestation('other.pub', type);
      expect(a.code, type).not.toBe(0);
    }
  });

  it('a wrong key password fails before the build: nothing is pushed', async () => {
    const other = `${reg.host}/signed/never:v1`;
    const r = await runTsbuild(['build', '--push', '--sign', '--key', 'cosign.key', '-t', other, '--secret', 'id=tok,env=TOK', '.'], { root, cwd: dir, env: { COSIGN_PASSWORD: 'wrong', TOK: SECRET } });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/password/i);
    expect(r.stderr).not.toMatch(/RUN /);
    const res = await fetch(`${reg.url}/v2/signed/never/tags/list`);
    expect(res.status).toBe(404);
  });
});
