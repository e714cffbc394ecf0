/**
 * CAST-256 a.k.a. CAST6 (RFC 2612): 16-byte block, big-endian words, keys of 16..32 bytes in
 * steps of 4 (zero-padded to 32). OpenSSL has no CAST-256, so this is the only implementation.
 */
import { f1, f2, f3 } from './cast5.js';
import type { WordCipher } from './wordcipher.js';

export class Cast6 implements WordCipher {
  readonly blockWords = 4;
  readonly littleEndian = false;
  /** Per quad-round i: km[4i..4i+3] and kr[4i..4i+3] (RFC 2612 Km_i, Kr_i). */
  private readonly km = new Int32Array(48);
  private readonly kr = new Uint8Array(48);

  constructor(key: Uint8Array) {
    if (key.length < 16 || key.length > 32 || key.length % 4 !== 0) {
      throw new RangeError(`CAST6 key must be 16, 20, 24, 28 or 32 bytes, got ${key.length}`);
    }
    const kb = new Uint8Array(32);
    kb.set(key);
    const kappa = new Uint32Array(8); // A..H
    for (let i = 0; i < 8; i++) kappa[i] = (kb[4 * i] << 24) | (kb[4 * i + 1] << 16) | (kb[4 * i + 2] << 8) | kb[4 * i + 3];
    // Tm/Tr for the 24 forward octave W(i), generated as RFC 2612 section 2.4 describes.
    let cm = 0x5a827999, cr = 19;
    const tm = new Uint32Array(8), tr = new Uint8Array(8);
    for (let i = 0; i < 24; i++) {
      for (let j = 0; j < 8; j++) {
        tm[j] = cm; cm = (cm + 0x6ed9eba1) >>> 0;
        tr[j] = cr; cr = (cr + 17) & 31;
      }
      // W(i): G ^= f1(H), F ^= f2(G), E ^= f3(F), D ^= f1(E), C ^= f2(D), B ^= f3(C), A ^= f1(B), H ^= f2(A)
      for (let j = 0; j < 8; j++) {
        const dst = (14 - j) & 7; // 6,5,4,3,2,1,0,7
        const srcIdx = (dst + 1) & 7;
        const m = j % 3;
        kappa[dst] ^= (m === 0 ? f1 : m === 1 ? f2 : f3)(kappa[srcIdx], tm[j], tr[j]);
      }
      if (i % 2 === 1) {
        const q = (i - 1) / 2;
        // Kr_q = 5 LSBs of (A, C, E, G); Km_q = (H, F, D, B).
        for (let j = 0; j < 4; j++) {
          this.kr[4 * q + j] = kappa[2 * j] & 31;
          this.km[4 * q + j] = kappa[7 - 2 * j];
        }
      }
    }
  }

  encrypt(w: Int32Array): void {
    const km = this.km, kr = this.kr;
    let a = w[0], b = w[1], c = w[2], d = w[3];
    // Six forward quad-rounds Q (C ^= f1(D), B ^= f2(C), A ^= f3(B), D ^= f1(A)), then six
    // reverse quad-rounds QBAR (D ^= f1(A), A ^= f3(B), B ^= f2(C), C ^= f1(D)).
    for (let o = 0; o < 24; o += 4) {
      c ^= f1(d, km[o], kr[o]);
      b ^= f2(c, km[o + 1], kr[o + 1]);
      a ^= f3(b, km[o + 2], kr[o + 2]);
      d ^= f1(a, km[o + 3], kr[o + 3]);
    }
    for (let o = 24; o < 48; o += 4) {
      d ^= f1(a, km[o + 3], kr[o + 3]);
      a ^= f3(b, km[o + 2], kr[o + 2]);
      b ^= f2(c, km[o + 1], kr[o + 1]);
      c ^= f1(d, km[o], kr[o]);
    }
    w[0] = a; w[1] = b; w[2] = c; w[3] = d;
  }

  decrypt(w: Int32Array): void {
    const km = this.km, kr = this.kr;
    let a = w[0], b = w[1], c = w[2], d = w[3];
    // The inverse: Q for quad-rounds 11..6, then QBAR for 5..0.
    for (let o = 44; o >= 24; o -= 4) {
      c ^= f1(d, km[o], kr[o]);
      b ^= f2(c, km[o + 1], kr[o + 1]);
      a ^= f3(b, km[o + 2], kr[o + 2]);
      d ^= f1(a, km[o + 3], kr[o + 3]);
    }
    for (let o = 20; o >= 0; o -= 4) {
      d ^= f1(a, km[o + 3], kr[o + 3]);
      a ^= f3(b, km[o + 2], kr[o + 2]);
      b ^= f2(c, km[o + 1], kr[o + 1]);
      c ^= f1(d, km[o], kr[o]);
    }
    w[0] = a; w[1] = b; w[2] = c; w[3] = d;
  }
}
