/**
 * The eCryptfs cipher table (ECRYPTFS-FORMAT §3.6): block sizes, the key sizes the mount helper
 * offers, the min/max it prints, and the RFC 2440 cipher codes stored in Tag 3 and Tag 70 packets.
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
}

export const CIPHERS: Readonly<Record<CipherName, CipherTableEntry>> = {
  aes: { blockSize: 16, menuBlockSize: 16, keySizes: [16, 32, 24], minKeyBytes: 16, maxKeyBytes: 32 },
  blowfish: { blockSize: 8, menuBlockSize: 16, keySizes: [16, 32, 56], minKeyBytes: 16, maxKeyBytes: 56 },
  des3_ede: { blockSize: 8, menuBlockSize: 8, keySizes: [24], minKeyBytes: 24, maxKeyBytes: 24 },
  twofish: { blockSize: 16, menuBlockSize: 16, keySizes: [16, 32], minKeyBytes: 16, maxKeyBytes: 32 },
  cast6: { blockSize: 16, menuBlockSize: 16, keySizes: [16, 32], minKeyBytes: 16, maxKeyBytes: 32 },
  cast5: { blockSize: 8, menuBlockSize: 8, keySizes: [16], minKeyBytes: 5, maxKeyBytes: 16 },
};

export function isCipherName(s: string): s is CipherName {
  return Object.prototype.hasOwnProperty.call(CIPHERS, s);
}

/**
 * Key sizes the kernel cipher itself takes, within the helper's min/max. AES and des3_ede are
 * fixed; twofish/cast6 take 16/24/32 (cast6 any multiple of 4); blowfish and cast5 take any byte
 * count in range (no cipher code records their key size: readers get it from the Tag 3 length).
 */
export function validKeyBytes(name: CipherName, keyBytes: number): boolean {
  if (!Number.isInteger(keyBytes)) return false;
  switch (name) {
    case 'aes':
      return keyBytes === 16 || keyBytes === 24 || keyBytes === 32;
    case 'des3_ede':
      return keyBytes === 24;
    case 'twofish':
      return keyBytes === 16 || keyBytes === 24 || keyBytes === 32;
    case 'cast6':
      return keyBytes >= 16 && keyBytes <= 32 && keyBytes % 4 === 0;
    case 'blowfish':
    case 'cast5':
      return keyBytes >= CIPHERS[name].minKeyBytes && keyBytes <= CIPHERS[name].maxKeyBytes;
  }
}

/** Throws EINVAL unless `name` is a cipher eCryptfs knows and `keyBytes` a size it takes. */
export function checkKeyBytes(name: string, keyBytes: number): asserts name is CipherName {
  if (!isCipherName(name)) {
    throw new EcryptfsError('EINVAL', `unknown cipher "${name}": use one of ${Object.keys(CIPHERS).join(', ')}`);
  }
  if (!validKeyBytes(name, keyBytes)) {
    throw new EcryptfsError('EINVAL', `cipher ${name} does not take ${keyBytes}-byte keys (the helper offers ${CIPHERS[name].keySizes.join(', ')})`);
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
