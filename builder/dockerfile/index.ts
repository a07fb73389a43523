export * from './errors.js';
export * from './instructions.js';
export * from './parse-instructions.js';
export * from './parser.js';
export * from './shell-lex.js';
