/** OCI image layout directories and content-graph helpers. */
export { readLayout, writeLayout, entriesOf, layoutIndex, indexDescriptors, parseIndexJson, OCI_LAYOUT_FILE, type OciLayout, type LayoutEntry, type LayoutWriteEntry } from './layout.js';
export { childDescriptors, childrenOf, copyGraph, walkGraph, sniffDescriptor, nodeKind, MAX_MANIFEST_BYTES, type NodeKind } from './graph.js';
export { imageFromContent, indexFromContent, layerCore } from './from-content.js';
