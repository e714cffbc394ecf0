/** Block-cipher names as eCryptfs (and the kernel crypto API) spells them. */
export type CipherName = 'aes' | 'blowfish' | 'des3_ede' | 'twofish' | 'cast6' | 'cast5';

/**
 * Per-extent IVs: one 16-byte array per extent, or all of them packed in one array (16 bytes per
 * extent, extent i at 16*i; what the batch paths use, one allocation per batch instead of one
 * per extent). Ciphers with 8-byte blocks use the first 8 bytes of each.
 */
export type ExtentIvs = readonly Uint8Array[] | Uint8Array;

/** Number of extents `ivs` covers. */
export function ivCount(ivs: ExtentIvs): number {
  return ivs instanceof Uint8Array ? ivs.length >> 4 : ivs.length;
}

/** The IV of extent e (a view, not a copy). */
export function ivOf(ivs: ExtentIvs, e: number): Uint8Array {
  return ivs instanceof Uint8Array ? ivs.subarray(16 * e, 16 * e + 16) : ivs[e];
}

/** The IVs packed 16 bytes each (the array itself when it already is). */
export function packIvs(ivs: ExtentIvs): Uint8Array {
  if (ivs instanceof Uint8Array) return ivs;
  const out = new Uint8Array(16 * ivs.length);
  ivs.forEach((iv, i) => out.set(iv.subarray(0, 16), 16 * i));
  return out;
}

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
   * Extent i uses the i-th IV of `ivs` (see ExtentIvs); the IV count is the extent count.
   * src and dst must not overlap unless they are the same buffer; src is never modified otherwise.
   */
  cbcEncryptExtents(src: Uint8Array, dst: Uint8Array, extentSize: number, ivs: ExtentIvs): void;
  /** The inverse of cbcEncryptExtents; dst may be src (in place). */
  cbcDecryptExtents(src: Uint8Array, dst: Uint8Array, extentSize: number, ivs: ExtentIvs): void;
  /** Free native state and its key schedule now, not at garbage collection; the object is unusable after. */
  destroy?(): void;
}
