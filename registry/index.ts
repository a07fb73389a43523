export * from './transport/index.js';
export * from './auth/index.js';
export * from './remote/index.js';
export * from './copy.js';
export * from './options.js';
