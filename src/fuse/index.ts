export * from './protocol.js';
export * from './operations.js';
export * from './errno.js';
export { FuseServer, type FuseServerOptions } from './session.js';
export * from './mount.js';
