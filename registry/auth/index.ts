export * from './keychain.js';
export * from './login.js';
export * from './verify.js';
