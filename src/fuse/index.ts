export * from './abi.js';
export * from './server.js';
export * from './mount.js';
