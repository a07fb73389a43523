export * from './options.js';
export * from './repository.js';
export * from './pull.js';
export * from './push.js';
export * from './image.js';
export * from './referrers.js';
export { mapLimit } from './parse.js';
