/**
 * SBOM documents from an {@link ImageInventory}: SPDX 2.3 JSON and CycloneDX 1.5 JSON, with one
 * element for the image, one for the OS and one per installed package (with its purl).
 * https://spdx.github.io/spdx-spec/v2.3/  https://cyclonedx.org/docs/1.5/json/
 */
import { createHash } from 'node:crypto';
import type { ImageInventory, InstalledPackage } from './packages.js';

/** The SBOM formats `tsbuild sbom` writes. */
export type SbomFormat = 'spdx-json' | 'cyclonedx-json';

/** What the document says about the image. */
export interface SbomSubject {
  /** The image name as the user gave it. */
  readonly name: string;
  /** Manifest digest of the image. */
  readonly digest: string;
  /** Creation time written into the document (default: now; pass SOURCE_DATE_EPOCH for reproducible output). */
  readonly created?: Date;
  /** Tool name and version for the creator fields. */
  readonly tool?: { readonly name: string; readonly version: string };
}

function iso(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** A stable UUID-shaped string from some text (documents of the same image get the same id). */
function uuidFrom(text: string): string {
  const h = createHash('sha256').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h.slice(16, 17), 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function spdxId(kind: string, p: string): string {
  return `SPDXRef-${kind}-${p.replace(/[^A-Za-z0-9.-]/g, '-')}`;
}

function supplier(maintainer: string | undefined): string {
  if (!maintainer) return 'NOASSERTION';
  return `Organization: ${maintainer}`;
}

/** An SPDX 2.3 JSON document (as a plain object). */
export function spdxDocument(inv: ImageInventory, subject: SbomSubject): Record<string, unknown> {
  const created = subject.created ?? new Date();
  const tool = subject.tool ?? { name: 'tsbuild', version: '0.1.0' };
  const imageId = spdxId('Image', subject.name);
  const osId = inv.os ? spdxId('OperatingSystem', `${inv.os.id}-${inv.os.versionId ?? ''}`) : undefined;
  const packages: Record<string, unknown>[] = [
    {
      name: subject.name,
      SPDXID: imageId,
      versionInfo: subject.digest,
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      primaryPackagePurpose: 'CONTAINER',
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: 'NOASSERTION',
      copyrightText: 'NOASSERTION',
    },
  ];
  const relationships: Record<string, unknown>[] = [{ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: imageId }];
  if (inv.os && osId) {
    packages.push({
      name: inv.os.id,
      SPDXID: osId,
      versionInfo: inv.os.release ?? inv.os.versionId ?? 'NOASSERTION',
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      primaryPackagePurpose: 'OPERATING-SYSTEM',
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: 'NOASSERTION',
      copyrightText: 'NOASSERTION',
    });
    relationships.push({ spdxElementId: imageId, relationshipType: 'CONTAINS', relatedSpdxElement: osId });
  }
  for (const p of inv.packages) {
    const id = spdxId('Package', `${p.type}-${p.name}-${createHash('sha256').update(p.purl).digest('hex').slice(0, 16)}`);
    const el: Record<string, unknown> = {
      name: p.name,
      SPDXID: id,
      versionInfo: p.version,
      supplier: supplier(p.maintainer),
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      ...(p.homepage ? { homepage: p.homepage } : {}),
      ...(p.source ? { sourceInfo: `built package from: ${p.source} ${p.sourceVersion ?? ''}`.trim() } : {}),
      licenseConcluded: 'NOASSERTION',
      licenseDeclared: p.license && /^[A-Za-z0-9.+-]+$/.test(p.license) ? p.license : 'NOASSERTION',
      copyrightText: 'NOASSERTION',
      ...(p.description ? { summary: p.description } : {}),
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: p.purl }],
      primaryPackagePurpose: 'LIBRARY',
    };
    packages.push(el);
    relationships.push({ spdxElementId: osId ?? imageId, relationshipType: 'CONTAINS', relatedSpdxElement: id });
  }
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: subject.name,
    documentNamespace: `https://spdx.org/spdxdocs/${tool.name}-${uuidFrom(`${subject.name}@${subject.digest}@${iso(created)}`)}`,
    creationInfo: { creators: [`Tool: ${tool.name}-${tool.version}`], created: iso(created) },
    packages,
    relationships,
  };
}

function componentProps(p: InstalledPackage): { name: string; value: string }[] {
  const props: { name: string; value: string }[] = [{ name: 'tsbuild:package:type', value: p.type }];
  if (p.source) props.push({ name: 'tsbuild:package:source', value: p.source });
  if (p.sourceVersion) props.push({ name: 'tsbuild:package:source-version', value: p.sourceVersion });
  if (p.architecture) props.push({ name: 'tsbuild:package:architecture', value: p.architecture });
  return props;
}

/** A CycloneDX 1.5 JSON BOM (as a plain object). */
export function cyclonedxDocument(inv: ImageInventory, subject: SbomSubject): Record<string, unknown> {
  const created = subject.created ?? new Date();
  const tool = subject.tool ?? { name: 'tsbuild', version: '0.1.0' };
  const imageRef = `image:${subject.digest}`;
  const components: Record<string, unknown>[] = [];
  const osRef = inv.os ? `os:${inv.os.id}@${inv.os.versionId ?? ''}` : undefined;
  if (inv.os && osRef) {
    components.push({ 'bom-ref': osRef, type: 'operating-system', name: inv.os.id, ...((inv.os.release ?? inv.os.versionId) ? { version: inv.os.release ?? inv.os.versionId } : {}), ...(inv.os.prettyName ? { description: inv.os.prettyName } : {}) });
  }
  for (const p of inv.packages) {
    components.push({
      'bom-ref': p.purl,
      type: 'library',
      ...(p.maintainer ? { supplier: { name: p.maintainer } } : {}),
      name: p.name,
      version: p.version,
      ...(p.description ? { description: p.description } : {}),
      ...(p.license ? { licenses: [{ expression: p.license }] } : {}),
      purl: p.purl,
      properties: componentProps(p),
    });
  }
  const dependencies: Record<string, unknown>[] = [{ ref: imageRef, dependsOn: osRef ? [osRef] : inv.packages.map((p) => p.purl) }];
  if (osRef) dependencies.push({ ref: osRef, dependsOn: inv.packages.map((p) => p.purl) });
  return {
    bomFormat: 'CycloneDX',
    specVersion: '1.5',
    serialNumber: `urn:uuid:${uuidFrom(`${subject.name}@${subject.digest}@${iso(created)}`)}`,
    version: 1,
    metadata: {
      timestamp: iso(created),
      tools: { components: [{ type: 'application', name: tool.name, version: tool.version }] },
      component: { 'bom-ref': imageRef, type: 'container', name: subject.name, version: subject.digest },
    },
    components,
    dependencies,
  };
}

/** The document in `format`. */
export function sbomDocument(format: SbomFormat, inv: ImageInventory, subject: SbomSubject): Record<string, unknown> {
  return format === 'spdx-json' ? spdxDocument(inv, subject) : cyclonedxDocument(inv, subject);
}
