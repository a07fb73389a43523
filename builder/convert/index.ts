export * from './stages.js';
export * from './resolve.js';
export * from './convert.js';
