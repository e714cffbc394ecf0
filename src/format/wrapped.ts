/**
 * ~/.ecryptfs/wrapped-passphrase files (§10): v2 (':' 0x02, random salt, sig, AES-128-ECB) written and
 * read, v1 (sig + ciphertext, salt not stored) read and written. The sig is the only password check.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { EcryptfsError } from '../errors.js';
import { deriveKey, DEFAULT_SALT } from './kdf.js';
function ecb(enc: boolean, key: Buffer, d: Buffer): Buffer {
  const c = enc ? createCipheriv('aes-128-ecb', key, null) : createDecipheriv('aes-128-ecb', key, null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(d), c.final()]);
}
/** The wrapping key's sig and the zero-padded passphrase under AES-128-ECB. */
function wrap(passphrase: string | Uint8Array, wrapping: string | Uint8Array, salt: Buffer): { sig: string; ct: Buffer } {
  const p = Buffer.from(typeof passphrase === 'string' ? Buffer.from(passphrase) : passphrase);
  if (p.length > 64 || p.length === 0) throw new EcryptfsError('EINVAL', 'passphrase must be 1 to 64 bytes');
  const k = deriveKey(wrapping, salt);
  const padded = Buffer.alloc(Math.ceil(p.length / 16) * 16);
  p.copy(padded);
  const ct = ecb(true, k.key.subarray(0, 16), padded);
  padded.fill(0);
  p.fill(0);
  k.key.fill(0);
  return { sig: k.sig, ct };
}

/** A version-2 file (what ecryptfs-utils >= 106 writes): a random salt stored in the file. */
export function wrapPassphrase(passphrase: string | Uint8Array, wrapping: string | Uint8Array, salt: Buffer = randomBytes(8)): Buffer {
  const { sig, ct } = wrap(passphrase, wrapping, salt);
  return Buffer.concat([Buffer.from([0x3a, 0x02]), salt, Buffer.from(sig, 'latin1'), ct]);
}

/** A version-1 file (ecryptfs-utils <= 104): sig + ciphertext, salt not stored (default or ~/.ecryptfsrc). */
export function wrapPassphraseV1(passphrase: string | Uint8Array, wrapping: string | Uint8Array, salt: Buffer = DEFAULT_SALT): Buffer {
  const { sig, ct } = wrap(passphrase, wrapping, salt);
  return Buffer.concat([Buffer.from(sig, 'latin1'), ct]);
}

export function unwrapPassphrase(file: Uint8Array, wrapping: string | Uint8Array, v1Salt: Buffer = DEFAULT_SALT): Buffer {
  const b = Buffer.from(file);
  let salt = v1Salt, sig: string, ct: Buffer;
  if (b[0] === 0x3a) {
    if (b[1] !== 2) throw new EcryptfsError('EUNSUPPORTED', `wrapped-passphrase version ${b[1]}`);
    salt = b.subarray(2, 10); sig = b.subarray(10, 26).toString('latin1'); ct = b.subarray(26);
  } else { sig = b.subarray(0, 16).toString('latin1'); ct = b.subarray(16); }
  if (!/^[0-9a-f]{16}$/.test(sig) || ct.length === 0 || ct.length % 16 !== 0 || ct.length > 64) throw new EcryptfsError('ECORRUPT', 'not a wrapped-passphrase file');
  const k = deriveKey(wrapping, salt);
  if (k.sig !== sig) throw new EcryptfsError('EWRONGPASS', 'wrong wrapping passphrase (login password)');
  const pt = ecb(false, k.key.subarray(0, 16), ct);
  const z = pt.indexOf(0);
  return Buffer.from(pt.subarray(0, z < 0 ? pt.length : z));
}
