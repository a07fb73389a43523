export * from './headers.js';
export * from './errors.js';
export * from './fetch.js';
export * from './challenge.js';
export * from './middleware.js';
export * from './auth.js';
export * from './client.js';
