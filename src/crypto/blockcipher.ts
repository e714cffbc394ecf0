import { createCipheriv, createDecipheriv } from 'node:crypto';
import type { BlockCipher, CipherName } from './types.js';

// PROVISIONAL minimal implementation (OpenSSL only, unbatched) so other layers can start;
// the crypto module owner replaces it with batched OpenSSL + pure-TS ciphers.

const BLOCK: Record<CipherName, 8 | 16> = { aes: 16, blowfish: 8, des3_ede: 8, twofish: 16, cast6: 16, cast5: 8 };

function opensslName(name: CipherName, keyBytes: number, mode: 'ecb' | 'cbc'): string {
  switch (name) {
    case 'aes': return `aes-${keyBytes * 8}-${mode}`;
    case 'des3_ede': return mode === 'ecb' ? 'des-ede3-ecb' : 'des-ede3-cbc';
    case 'blowfish': return `bf-${mode}`;
    case 'cast5': return `cast5-${mode}`;
    default: throw new Error(`no OpenSSL cipher for ${name}`);
  }
}

export function blockSizeOf(name: CipherName): 8 | 16 {
  return BLOCK[name];
}

export function createBlockCipher(name: CipherName, key: Uint8Array): BlockCipher {
  const bs = BLOCK[name];
  const k = Buffer.from(key);
  const run = (mode: 'ecb' | 'cbc', enc: boolean, iv: Uint8Array | null, data: Uint8Array): Buffer => {
    const algo = opensslName(name, k.length, mode);
    const c = enc ? createCipheriv(algo, k, iv) : createDecipheriv(algo, k, iv);
    c.setAutoPadding(false);
    return Buffer.concat([c.update(data), c.final()]);
  };
  return {
    name, blockSize: bs, keyBytes: k.length, backend: 'openssl',
    ecbEncrypt: (d) => run('ecb', true, null, d),
    ecbDecrypt: (d) => run('ecb', false, null, d),
    cbcEncryptExtents(src, dst, extentSize, ivs) {
      for (let i = 0; i < ivs.length; i++) {
        const o = i * extentSize;
        dst.set(run('cbc', true, ivs[i].subarray(0, bs), src.subarray(o, o + extentSize)), o);
      }
    },
    cbcDecryptExtents(src, dst, extentSize, ivs) {
      for (let i = 0; i < ivs.length; i++) {
        const o = i * extentSize;
        dst.set(run('cbc', false, ivs[i].subarray(0, bs), src.subarray(o, o + extentSize)), o);
      }
    },
  };
}
