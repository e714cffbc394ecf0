/**
 * Passphrase -> 64-byte auth-token key ("FEKEK", session_key_encryption_key) and its sig, as
 * ecryptfs-utils generate_passphrase_sig does (ECRYPTFS-FORMAT §5.1, CORPUS-RULES §1):
 * h = SHA512(salt || passphrase), then 65535 more SHA512(h); sig = hex(SHA512(h)[0:8]).
 */
import { createHash } from 'node:crypto';
import { sha512Rounds } from '../crypto/sha512.js';
import { EcryptfsError } from '../errors.js';

/** ECRYPTFS_DEFAULT_SALT: the salt of every mount/file key (mount.ecryptfs, add-passphrase, setup-private). */
export const DEFAULT_SALT: Buffer = Buffer.from('0011223344556677', 'hex');
/**
 * The FNEK salt the tools really use: the 8 ASCII bytes "99887766", because ecryptfs-utils passes
 * the hex string ECRYPTFS_DEFAULT_SALT_FNEK_HEX where it expects raw bytes.
 */
export const FNEK_SALT: Buffer = Buffer.from('99887766', 'latin1');
export const KDF_ROUNDS = 65536;
export const MAX_PASSPHRASE_BYTES = 64;
export const KEY_BYTES = 64;

export interface DerivedKey {
  /** 64 bytes: the auth token's session_key_encryption_key (FEKEK or FNEK). */
  key: Buffer;
  /** 16 lowercase hex digits: the key's name in the keyring, ecryptfs_sig / ecryptfs_fnek_sig. */
  sig: string;
}

/** The sig of a 64-byte key: hex of the first 8 bytes of its SHA-512. */
export function sigOfKey(key: Uint8Array): string {
  return createHash('sha512').update(key).digest().subarray(0, 8).toString('hex');
}

function inputs(passphrase: string | Uint8Array, salt: Uint8Array): Buffer {
  if (salt.length !== 8) throw new EcryptfsError('EINVAL', `salt must be 8 bytes, not ${salt.length}`);
  const p = typeof passphrase === 'string' ? Buffer.from(passphrase, 'utf8') : passphrase;
  if (p.length > MAX_PASSPHRASE_BYTES) {
    throw new EcryptfsError('EINVAL', `passphrase is ${p.length} bytes; eCryptfs takes at most ${MAX_PASSPHRASE_BYTES} bytes (UTF-8)`);
  }
  return createHash('sha512').update(salt).update(p).digest();
}

/** The 65,535 further rounds, through OpenSSL directly where possible (src/crypto/sha512.ts). */
function rounds(h: Buffer, n: number): Buffer {
  const out = sha512Rounds(h, n);
  // sha512Rounds always returns a new buffer, so the first digest is spent.
  h.fill(0);
  return out;
}

/** Synchronous derivation: ~30-70 ms of CPU (65536 SHA-512 calls). */
export function deriveKey(passphrase: string | Uint8Array, salt: Uint8Array = DEFAULT_SALT): DerivedKey {
  const key = rounds(inputs(passphrase, salt), KDF_ROUNDS - 1);
  return { key, sig: sigOfKey(key) };
}

// Rounds per slice of the async version: a few ms each, so timers and I/O keep running.
const SLICE = 2048;

/**
 * The same derivation without holding the event loop for more than a few ms at a time: the
 * rounds run in slices separated by setImmediate. Chosen over a worker thread because it needs no
 * separate worker file in dist/, no thread start-up (~30 ms, a fair share of the ~100 ms job) and
 * keeps the passphrase in this thread; the CPU cost is the same.
 */
export async function deriveKeyAsync(passphrase: string | Uint8Array, salt: Uint8Array = DEFAULT_SALT): Promise<DerivedKey> {
  let h = inputs(passphrase, salt);
  let left = KDF_ROUNDS - 1;
  while (left > 0) {
    const n = Math.min(SLICE, left);
    h = rounds(h, n);
    left -= n;
    if (left > 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return { key: h, sig: sigOfKey(h) };
}
