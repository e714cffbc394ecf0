/** The eCryptfs cipher table: block sizes, key sizes the mount helper offers, RFC 2440 codes (ECRYPTFS-FORMAT §3.6). */
import type { CipherName } from '../crypto/types.js';
import { EcryptfsError } from '../errors.js';

export interface CipherTableEntry { blockSize: 8 | 16; keySizes: number[]; minKeyBytes: number; maxKeyBytes: number }
export const CIPHERS: Record<CipherName, CipherTableEntry> = {
  aes: { blockSize: 16, keySizes: [16, 32, 24], minKeyBytes: 16, maxKeyBytes: 32 },
  blowfish: { blockSize: 8, keySizes: [16, 32, 56], minKeyBytes: 16, maxKeyBytes: 56 },
  des3_ede: { blockSize: 8, keySizes: [24], minKeyBytes: 24, maxKeyBytes: 24 },
  twofish: { blockSize: 16, keySizes: [16, 32], minKeyBytes: 16, maxKeyBytes: 32 },
  cast6: { blockSize: 16, keySizes: [16, 32], minKeyBytes: 16, maxKeyBytes: 32 },
  cast5: { blockSize: 8, keySizes: [16], minKeyBytes: 5, maxKeyBytes: 16 },
};
export function cipherCode(name: CipherName, keyBytes: number): number {
  switch (name) {
    case 'aes': {
      const c = ({ 16: 0x07, 24: 0x08, 32: 0x09 } as Record<number, number>)[keyBytes];
      if (!c) throw new EcryptfsError('EINVAL', `aes takes 16, 24 or 32-byte keys, not ${keyBytes}`);
      return c;
    }
    case 'blowfish': return 0x04;
    case 'des3_ede': return 0x02;
    case 'cast5': return 0x03;
    case 'twofish': return 0x0a;
    case 'cast6': return 0x0b;
  }
}
export function cipherFromCode(code: number): { name: CipherName; keyBytes?: number } {
  switch (code) {
    case 0x07: return { name: 'aes', keyBytes: 16 };
    case 0x08: return { name: 'aes', keyBytes: 24 };
    case 0x09: return { name: 'aes', keyBytes: 32 };
    case 0x04: return { name: 'blowfish' };
    case 0x02: return { name: 'des3_ede', keyBytes: 24 };
    case 0x03: return { name: 'cast5' };
    case 0x0a: return { name: 'twofish' };
    case 0x0b: return { name: 'cast6' };
    default: throw new EcryptfsError('EUNSUPPORTED', `unknown cipher code 0x${code.toString(16)}`);
  }
}
