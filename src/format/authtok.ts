/**
 * The 740-byte packed `struct ecryptfs_auth_tok` the kernel reads from a "user" key named by the
 * sig (ECRYPTFS-FORMAT §9), for passphrase tokens. Integers are little-endian (host order on
 * x86/arm); only session_key_encryption_key matters to the kernel, the rest is bookkeeping.
 */
import { EcryptfsError } from '../errors.js';

export const AUTH_TOK_SIZE = 740;
export const AUTH_TOK_VERSION = 0x0004;
const TOKEN_PASSWORD = 0;
const TOKEN_PRIVATE_KEY = 1;
const PGP_DIGEST_ALGO_SHA512 = 10;
const SESSION_KEY_ENCRYPTION_KEY_SET = 0x02;

const OFF = {
  version: 0,
  tokenType: 2,
  hashAlgo: 632,
  sekBytes: 640,
  pwFlags: 644,
  key: 648,
  sig: 712,
  salt: 729,
} as const;

export interface AuthTok {
  key: Buffer; // 64-byte session_key_encryption_key
  sig: string; // 16 hex digits
  salt: Buffer; // 8 bytes, as the tools record it (FNEK tokens: ASCII "99887766")
}

/** Payload for add_key("user", sig, payload), as ecryptfs-utils generate_payload fills it. */
export function buildAuthTok(key: Uint8Array, sig: string, salt: Uint8Array): Buffer {
  if (key.length !== 64) throw new EcryptfsError('EINVAL', `auth token key must be 64 bytes, not ${key.length}`);
  if (!/^[0-9a-f]{16}$/.test(sig)) throw new EcryptfsError('EINVAL', 'auth token sig must be 16 lowercase hex digits');
  if (salt.length !== 8) throw new EcryptfsError('EINVAL', `auth token salt must be 8 bytes, not ${salt.length}`);
  const b = Buffer.alloc(AUTH_TOK_SIZE);
  b.writeUInt16LE(AUTH_TOK_VERSION, OFF.version);
  b.writeUInt16LE(TOKEN_PASSWORD, OFF.tokenType);
  b.writeInt32LE(PGP_DIGEST_ALGO_SHA512, OFF.hashAlgo);
  b.writeUInt32LE(64, OFF.sekBytes);
  b.writeUInt32LE(SESSION_KEY_ENCRYPTION_KEY_SET, OFF.pwFlags);
  b.set(key, OFF.key);
  b.write(sig, OFF.sig, 'latin1'); // followed by the NUL already there
  b.set(salt, OFF.salt);
  return b;
}

/** Reads a passphrase auth token; checks size, version, type and the key fields. */
export function parseAuthTok(payload: Uint8Array): AuthTok {
  const b = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  if (b.length !== AUTH_TOK_SIZE) {
    throw new EcryptfsError('ECORRUPT', `not an eCryptfs auth token: ${b.length} bytes instead of ${AUTH_TOK_SIZE}`);
  }
  const version = b.readUInt16LE(OFF.version);
  if (version !== AUTH_TOK_VERSION) {
    throw new EcryptfsError('EUNSUPPORTED', `auth token version 0x${version.toString(16).padStart(4, '0')} is not supported (the kernel takes 0x0004)`);
  }
  const type = b.readUInt16LE(OFF.tokenType);
  if (type === TOKEN_PRIVATE_KEY) throw new EcryptfsError('EUNSUPPORTED', 'auth token is a private-key (public-key) token; only passphrase tokens are supported');
  if (type !== TOKEN_PASSWORD) throw new EcryptfsError('ECORRUPT', `auth token has unknown token type ${type}`);
  const sekBytes = b.readUInt32LE(OFF.sekBytes);
  if (sekBytes !== 64 || (b.readUInt32LE(OFF.pwFlags) & SESSION_KEY_ENCRYPTION_KEY_SET) === 0) {
    throw new EcryptfsError('ECORRUPT', 'auth token carries no 64-byte session key encryption key');
  }
  const sig = b.subarray(OFF.sig, OFF.sig + 16).toString('latin1');
  if (!/^[0-9a-f]{16}$/.test(sig) || b[OFF.sig + 16] !== 0) throw new EcryptfsError('ECORRUPT', 'auth token signature is not 16 hex digits + NUL');
  return { key: Buffer.from(b.subarray(OFF.key, OFF.key + 64)), sig, salt: Buffer.from(b.subarray(OFF.salt, OFF.salt + 8)) };
}
