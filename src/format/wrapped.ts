/**
 * ~/.ecryptfs/wrapped-passphrase files (ECRYPTFS-FORMAT §10, CORPUS-RULES §6): the mount
 * passphrase, zero-padded to 16-byte blocks, under AES-128-ECB with the first 16 bytes of the
 * KDF of the wrapping passphrase (usually the login password).
 *   v1 (ecryptfs-utils <= 104): wsig (16 hex) || C; the salt is not stored (default 0011223344556677).
 *   v2 (>= 106):                ':' 0x02 || salt[8] || wsig (16 hex) || C.
 * The sig is the only password check: there is no MAC.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { EcryptfsError } from '../errors.js';
import { DEFAULT_SALT, deriveKey, deriveKeyAsync, MAX_PASSPHRASE_BYTES, type DerivedKey } from './kdf.js';

export interface WrappedPassphrase {
  version: 1 | 2;
  /** v2: the salt stored in the file; v1: undefined (the caller supplies it). */
  salt?: Buffer;
  /** Sig of the wrapping key, 16 hex digits as stored. */
  sig: string;
  /** AES-128-ECB ciphertext, 16..64 bytes. */
  ciphertext: Buffer;
}

const V2_MAGIC = 0x3a; // ':'
const HEX16 = /^[0-9a-fA-F]{16}$/;

function corrupt(what: string): EcryptfsError {
  return new EcryptfsError('ECORRUPT', `not a valid wrapped-passphrase file: ${what}`);
}

/** Splits a wrapped-passphrase file into its fields; checks the layout, not the password. */
export function parseWrappedPassphrase(file: Uint8Array): WrappedPassphrase {
  const b = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (b.length < 16) throw corrupt(`${b.length} bytes, shorter than the 16-byte minimum`);
  let out: WrappedPassphrase;
  if (b[0] === V2_MAGIC) {
    if (b[1] !== 2) throw new EcryptfsError('EUNSUPPORTED', `wrapped-passphrase file version ${b[1]} is not supported (only 1 and 2 exist)`);
    if (b.length < 26) throw corrupt('version 2 header truncated');
    out = { version: 2, salt: Buffer.from(b.subarray(2, 10)), sig: b.subarray(10, 26).toString('latin1'), ciphertext: Buffer.from(b.subarray(26)) };
  } else {
    out = { version: 1, sig: b.subarray(0, 16).toString('latin1'), ciphertext: Buffer.from(b.subarray(16)) };
  }
  if (!HEX16.test(out.sig)) throw corrupt('the wrapping-key signature is not 16 hex digits');
  const n = out.ciphertext.length;
  if (n === 0 || n % 16 !== 0 || n > MAX_PASSPHRASE_BYTES) throw corrupt(`encrypted passphrase is ${n} bytes (must be 16, 32, 48 or 64)`);
  return out;
}

/** Serialises the fields (v1 ignores `salt`). */
export function buildWrappedPassphrase(w: WrappedPassphrase): Buffer {
  if (!HEX16.test(w.sig)) throw new EcryptfsError('EINVAL', 'wrapping-key signature must be 16 hex digits');
  if (w.version === 1) return Buffer.concat([Buffer.from(w.sig, 'latin1'), w.ciphertext]);
  if (!w.salt || w.salt.length !== 8) throw new EcryptfsError('EINVAL', 'a version 2 wrapped passphrase needs an 8-byte salt');
  return Buffer.concat([Buffer.from([V2_MAGIC, 0x02]), w.salt, Buffer.from(w.sig, 'latin1'), w.ciphertext]);
}

function aes128ecb(encrypt: boolean, key: Uint8Array, data: Uint8Array): Buffer {
  const c = encrypt ? createCipheriv('aes-128-ecb', key, null) : createDecipheriv('aes-128-ecb', key, null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
}

function passphraseBytes(passphrase: string | Uint8Array): Buffer {
  const p = typeof passphrase === 'string' ? Buffer.from(passphrase, 'utf8') : Buffer.from(passphrase);
  if (p.length === 0 || p.length > MAX_PASSPHRASE_BYTES) {
    p.fill(0);
    throw new EcryptfsError('EINVAL', `the passphrase to wrap must be 1 to ${MAX_PASSPHRASE_BYTES} bytes`);
  }
  // Unwrapping stops at the first NUL, so a NUL inside would silently shorten the passphrase.
  if (p.includes(0)) {
    p.fill(0);
    throw new EcryptfsError('EINVAL', 'the passphrase to wrap contains a NUL byte');
  }
  return p;
}

function seal(p: Buffer, k: DerivedKey): Buffer {
  const padded = Buffer.alloc(Math.ceil(p.length / 16) * 16);
  p.copy(padded);
  const ct = aes128ecb(true, k.key.subarray(0, 16), padded);
  padded.fill(0);
  p.fill(0);
  k.key.fill(0);
  return ct;
}

function open(w: WrappedPassphrase, k: DerivedKey): Buffer {
  if (k.sig !== w.sig) {
    k.key.fill(0);
    throw new EcryptfsError(
      'EWRONGPASS',
      'wrong wrapping passphrase: it does not match the signature stored in the wrapped-passphrase file. ' +
        'Use the password the file was wrapped with (normally the login password at the time), ' +
        `${w.version === 1 ? 'check the salt (v1 files use ~/.ecryptfsrc salt= or the default), ' : ''}or recover with the mount passphrase.`,
    );
  }
  const pt = aes128ecb(false, k.key.subarray(0, 16), w.ciphertext);
  k.key.fill(0);
  const z = pt.indexOf(0);
  const out = Buffer.from(pt.subarray(0, z < 0 ? pt.length : z));
  pt.fill(0);
  if (out.length === 0) throw corrupt('the signature matches but the passphrase decrypts to nothing');
  return out;
}

function saltFor(w: WrappedPassphrase, v1Salt: Uint8Array): Uint8Array {
  return w.version === 2 ? w.salt! : v1Salt;
}

/** A version-2 file, as ecryptfs-wrap-passphrase >= 106 writes (random salt per wrap). */
export function wrapPassphrase(passphrase: string | Uint8Array, wrappingPassphrase: string | Uint8Array, salt: Uint8Array = randomBytes(8)): Buffer {
  const p = passphraseBytes(passphrase);
  const k = deriveKey(wrappingPassphrase, salt);
  return buildWrappedPassphrase({ version: 2, salt: Buffer.from(salt), sig: k.sig, ciphertext: seal(p, k) });
}

/** A version-1 file (ecryptfs-utils <= 104); only for tests and old setups: salt not stored. */
export function wrapPassphraseV1(passphrase: string | Uint8Array, wrappingPassphrase: string | Uint8Array, salt: Uint8Array = DEFAULT_SALT): Buffer {
  const p = passphraseBytes(passphrase);
  const k = deriveKey(wrappingPassphrase, salt);
  return buildWrappedPassphrase({ version: 1, sig: k.sig, ciphertext: seal(p, k) });
}

/**
 * The mount passphrase in a wrapped-passphrase file (v1 or v2). v1Salt is used for v1 files only
 * (v2 stores its own). Wrong wrapping passphrase -> EWRONGPASS; damaged file -> ECORRUPT.
 */
export function unwrapPassphrase(file: Uint8Array, wrappingPassphrase: string | Uint8Array, v1Salt: Uint8Array = DEFAULT_SALT): Buffer {
  const w = parseWrappedPassphrase(file);
  return open(w, deriveKey(wrappingPassphrase, saltFor(w, v1Salt)));
}

/** wrapPassphrase without blocking the event loop for the ~100 ms key derivation. */
export async function wrapPassphraseAsync(passphrase: string | Uint8Array, wrappingPassphrase: string | Uint8Array, salt: Uint8Array = randomBytes(8)): Promise<Buffer> {
  const p = passphraseBytes(passphrase);
  const k = await deriveKeyAsync(wrappingPassphrase, salt);
  return buildWrappedPassphrase({ version: 2, salt: Buffer.from(salt), sig: k.sig, ciphertext: seal(p, k) });
}

/** unwrapPassphrase without blocking the event loop. */
export async function unwrapPassphraseAsync(file: Uint8Array, wrappingPassphrase: string | Uint8Array, v1Salt: Uint8Array = DEFAULT_SALT): Promise<Buffer> {
  const w = parseWrappedPassphrase(file);
  return open(w, await deriveKeyAsync(wrappingPassphrase, saltFor(w, v1Salt)));
}
