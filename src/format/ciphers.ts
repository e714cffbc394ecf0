/**
 * The eCryptfs cipher table (ECRYPTFS-FORMAT §3.6): block sizes, the key sizes each cipher takes,
 * the key sizes the mount helper offers, the min/max it prints, and the RFC 2440 cipher codes
 * stored in Tag 3 and Tag 70 packets. The one place that says which key sizes are valid.
 */
import type { CipherName } from '../crypto/types.js';
import { EcryptfsError } from '../errors.js';

export interface CipherTableEntry {
  /** Real cipher block size in bytes (what names and data are padded to). */
  readonly blockSize: 8 | 16;
  /**
   * The block size the ecryptfs-utils helper prints in its cipher menu. It comes from a static
   * table in the helper, which says 16 for blowfish (really 8); shown as-is for a faithful menu.
   */
  readonly menuBlockSize: number;
  /** Key sizes the helper's "Select key bytes" menu offers, in its order (first = default). */
  readonly keySizes: readonly number[];
  /** min/max key size as the helper's menu prints them. */
  readonly minKeyBytes: number;
  readonly maxKeyBytes: number;
  /**
   * Every key size accepted: those the kernel's cipher setkey takes (fs/ecryptfs sets a key of
   * ecryptfs_key_bytes on the tfm at mount and refuses the mount when that fails) within the
   * helper's min/max. AES 16/24/32; des3_ede 24; twofish 16/24/32 (a multiple of 8); cast6 16 to
   * 32 by 4; blowfish and cast5 any byte count (the kernel's blowfish takes 4 to 56, the helper
   * asks 16 at least).
   */
  readonly validKeySizes: readonly number[];
}

const range = (from: number, to: number, step = 1): number[] => Array.from({ length: Math.floor((to - from) / step) + 1 }, (_, i) => from + i * step);

export const CIPHERS: Readonly<Record<CipherName, CipherTableEntry>> = {
  aes: { blockSize: 16, menuBlockSize: 16, keySizes: [16, 32, 24], minKeyBytes: 16, maxKeyBytes: 32, validKeySizes: [16, 24, 32] },
  blowfish: { blockSize: 8, menuBlockSize: 16, keySizes: [16, 32, 56], minKeyBytes: 16, maxKeyBytes: 56, validKeySizes: range(16, 56) },
  des3_ede: { blockSize: 8, menuBlockSize: 8, keySizes: [24], minKeyBytes: 24, maxKeyBytes: 24, validKeySizes: [24] },
  twofish: { blockSize: 16, menuBlockSize: 16, keySizes: [16, 32], minKeyBytes: 16, maxKeyBytes: 32, validKeySizes: [16, 24, 32] },
  cast6: { blockSize: 16, menuBlockSize: 16, keySizes: [16, 32], minKeyBytes: 16, maxKeyBytes: 32, validKeySizes: range(16, 32, 4) },
  cast5: { blockSize: 8, menuBlockSize: 8, keySizes: [16], minKeyBytes: 5, maxKeyBytes: 16, validKeySizes: range(5, 16) },
};

export function isCipherName(s: string): s is CipherName {
  return Object.prototype.hasOwnProperty.call(CIPHERS, s);
}

/** `keyBytes` is a key size cipher `name` takes (CIPHERS[name].validKeySizes). */
export function validKeyBytes(name: CipherName, keyBytes: number): boolean {
  return CIPHERS[name].validKeySizes.includes(keyBytes);
}

/** The valid key sizes in words: "16, 24 or 32", "16 to 56". */
export function describeKeySizes(name: CipherName): string {
  const v = CIPHERS[name].validKeySizes;
  const last = v[v.length - 1];
  if (v.length > 4 && v.every((x, i) => x === v[0] + i)) return `${v[0]} to ${last}`;
  return v.length === 1 ? String(last) : `${v.slice(0, -1).join(', ')} or ${last}`;
}

/**
 * Throws EINVAL unless `name` is a cipher eCryptfs knows and `keyBytes` a size it takes;
 * `what` names the option in the message (e.g. "filename cipher").
 */
export function checkKeyBytes(name: string, keyBytes: number, what = 'cipher'): asserts name is CipherName {
  if (!isCipherName(name)) {
    throw new EcryptfsError('EINVAL', `unknown ${what} "${name}": use one of ${Object.keys(CIPHERS).join(', ')}`);
  }
  if (!validKeyBytes(name, keyBytes)) {
    throw new EcryptfsError('EINVAL', `${what} ${name} does not take ${keyBytes}-byte keys: the valid key sizes are ${describeKeySizes(name)} bytes`);
  }
}

/** RFC 2440 code for a cipher and key size; only AES encodes the key size (7/8/9). */
export function cipherCode(name: CipherName, keyBytes: number): number {
  checkKeyBytes(name, keyBytes);
  switch (name) {
    case 'aes':
      return keyBytes === 16 ? 0x07 : keyBytes === 24 ? 0x08 : 0x09;
    case 'blowfish':
      return 0x04;
    case 'des3_ede':
      return 0x02;
    case 'cast5':
      return 0x03;
    case 'twofish':
      return 0x0a;
    case 'cast6':
      return 0x0b;
  }
}

/**
 * Cipher for a code read from a packet. keyBytes is set only where the code fixes it: 0x08 = AES-192
 * (whose Tag 3 key is padded to 32 bytes, so the length cannot tell), 0x07/0x09 and des3_ede.
 * Otherwise the key size comes from the packet (Tag 3) or the mount (Tag 70).
 */
export function cipherFromCode(code: number): { name: CipherName; keyBytes?: number } {
  switch (code) {
    case 0x07:
      return { name: 'aes', keyBytes: 16 };
    case 0x08:
      return { name: 'aes', keyBytes: 24 };
    case 0x09:
      return { name: 'aes', keyBytes: 32 };
    case 0x04:
      return { name: 'blowfish' };
    case 0x02:
      return { name: 'des3_ede', keyBytes: 24 };
    case 0x03:
      return { name: 'cast5' };
    case 0x0a:
      return { name: 'twofish' };
    case 0x0b:
      return { name: 'cast6' };
    case 0x01:
      throw new EcryptfsError('EUNSUPPORTED', 'cipher code 0x01 is RSA (public-key Tag 1), which is not supported');
    default:
      throw new EcryptfsError('EUNSUPPORTED', `unknown cipher code 0x${code.toString(16).padStart(2, '0')}: not one eCryptfs writes`);
  }
}
