/** cosign-compatible signing without network access: keys, payloads, signature images, attestations, SBOMs. */
export * from './errors.js';
export * from './keys.js';
export * from './payload.js';
export * from './dsse.js';
export * from './signatures.js';
export { goJson, goMap } from './go-json.js';
export * from './bundle.js';
export * from './provenance.js';
