export * from './stages.js';
export * from './resolve.js';
