/** Block-cipher names as eCryptfs (and the kernel crypto API) spells them. */
export type CipherName = 'aes' | 'blowfish' | 'des3_ede' | 'twofish' | 'cast6' | 'cast5';

export const CIPHER_NAMES: readonly CipherName[] = ['aes', 'blowfish', 'des3_ede', 'twofish', 'cast6', 'cast5'];

/**
 * One keyed block cipher. All lengths must be multiples of blockSize; no padding is ever added.
 * Implementations: OpenSSL through node:crypto (aes, des3_ede, and blowfish/cast5 when the legacy
 * provider is loaded) or pure TypeScript (twofish, cast6, and blowfish/cast5 as fallback).
 */
export interface BlockCipher {
  readonly name: CipherName;
  readonly blockSize: 8 | 16;
  readonly keyBytes: number;
  /** 'openssl' or 'js': which implementation serves this object (for diagnostics and bench). */
  readonly backend: 'openssl' | 'js';
  ecbEncrypt(data: Uint8Array): Buffer;
  ecbDecrypt(data: Uint8Array): Buffer;
  /**
   * CBC-encrypt `count` consecutive extents of `extentSize` bytes from src into dst (same offsets).
   * Extent i uses ivs[i] (16 bytes; ciphers with 8-byte blocks use its first 8 bytes).
   * src and dst must not overlap unless they are the same buffer; src is never modified otherwise.
   */
  cbcEncryptExtents(src: Uint8Array, dst: Uint8Array, extentSize: number, ivs: readonly Uint8Array[]): void;
  /** The inverse of cbcEncryptExtents; dst may be src (in place). */
  cbcDecryptExtents(src: Uint8Array, dst: Uint8Array, extentSize: number, ivs: readonly Uint8Array[]): void;
}
