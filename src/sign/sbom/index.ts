/** SBOMs from an image's package databases. */
export * from './packages.js';
export * from './formats.js';
export { readImageFiles, cleanPath } from './image-files.js';
