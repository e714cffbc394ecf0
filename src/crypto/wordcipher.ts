/**
 * The shape every pure-TypeScript block cipher here has: an ECB primitive that works in place on
 * the block's 32-bit words, so the mode loops (jsmodes.ts) can chain without allocating.
 */
export interface WordCipher {
  /** 2 words (8-byte block) or 4 words (16-byte block). */
  readonly blockWords: 2 | 4;
  /** How block bytes map to words: Twofish reads little-endian words, CAST and Blowfish big-endian. */
  readonly littleEndian: boolean;
  /** Encrypt the block held in w[0..blockWords) in place (Int32Array: V8 keeps int32 loads unboxed). */
  encrypt(w: Int32Array): void;
  /** Decrypt the block held in w[0..blockWords) in place. */
  decrypt(w: Int32Array): void;
}
