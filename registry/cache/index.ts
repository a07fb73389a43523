export * from './format.js';
export * from './registry-cache.js';
