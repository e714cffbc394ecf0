/** ecryptfs-ts library entry point. */
export { EcryptfsError, isEcryptfsError, type ErrorCode } from './errors.js';
export type { CipherName, BlockCipher } from './crypto/types.js';
export { createBlockCipher } from './crypto/blockcipher.js';
export * from './format/header.js';
export * from './format/offsets.js';
export { ContentCipher, rootIv, extentIv } from './format/contentenc.js';
export * from './format/filename.js';
export * from './format/kdf.js';
export * from './format/wrapped.js';
export * from './format/authtok.js';
export * from './format/ciphers.js';
export { KeyRing, type AuthKey } from './volume/keyring.js';
export { resolveKeys, readSecretFile, parseSigFile, type KeySource, type ResolvedKeys } from './volume/keysource.js';
export { Volume, type VolumeOptions, type DirEntry, type EntryStat } from './volume/volume.js';
export { EcryptfsFile, type NewFileParams } from './volume/file.js';
export { decryptTree, encryptTree, type TreeResult, type TreeProblem } from './volume/tree.js';
export { fsck, fsckFailed, type FsckReport, type FsckEntry, type Verdict } from './volume/fsck.js';
export { NodeLowerFs, type LowerFs, type LowerFile } from './lower/lowerfs.js';
