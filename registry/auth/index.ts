export * from './keychain.js';
export * from './login.js';
