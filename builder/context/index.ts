export * from './context.js';
export * from './dockerignore.js';
export * from './go-path.js';
