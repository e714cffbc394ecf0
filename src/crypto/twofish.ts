/**
 * Twofish (Schneier et al., 1998): 16-byte block, little-endian words, keys of 16, 24 or 32
 * bytes. OpenSSL has no Twofish, so this is the only implementation. The key-dependent S-boxes
 * and MDS multiply are folded into four 256-word tables once per key, as the paper suggests.
 */
import type { WordCipher } from './wordcipher.js';

// The 4-bit permutations t0..t3 that define q0 and q1 (paper section 4.3.5).
const Q0T = [
  [0x8, 0x1, 0x7, 0xd, 0x6, 0xf, 0x3, 0x2, 0x0, 0xb, 0x5, 0x9, 0xe, 0xc, 0xa, 0x4],
  [0xe, 0xc, 0xb, 0x8, 0x1, 0x2, 0x3, 0x5, 0xf, 0x4, 0xa, 0x6, 0x7, 0x0, 0x9, 0xd],
  [0xb, 0xa, 0x5, 0xe, 0x6, 0xd, 0x9, 0x0, 0xc, 0x8, 0xf, 0x3, 0x2, 0x4, 0x7, 0x1],
  [0xd, 0x7, 0xf, 0x4, 0x1, 0x2, 0x6, 0xe, 0x9, 0xb, 0x3, 0x0, 0x8, 0x5, 0xc, 0xa],
];
const Q1T = [
  [0x2, 0x8, 0xb, 0xd, 0xf, 0x7, 0x6, 0xe, 0x3, 0x1, 0x9, 0x4, 0x0, 0xa, 0xc, 0x5],
  [0x1, 0xe, 0x2, 0xb, 0x4, 0xc, 0x3, 0x7, 0x6, 0xd, 0xa, 0x5, 0xf, 0x9, 0x0, 0x8],
  [0x4, 0xc, 0x7, 0x5, 0x1, 0x6, 0x9, 0xa, 0x0, 0xe, 0xd, 0x8, 0x2, 0xb, 0x3, 0xf],
  [0xb, 0x9, 0x5, 0x1, 0xc, 0x3, 0xd, 0xe, 0x6, 0x4, 0x7, 0xf, 0x2, 0x0, 0x8, 0xa],
];

function makeQ(t: number[][]): Uint8Array {
  const q = new Uint8Array(256);
  const ror4 = (x: number): number => ((x >>> 1) | (x << 3)) & 15;
  for (let x = 0; x < 256; x++) {
    let a = x >>> 4, b = x & 15;
    for (let r = 0; r < 2; r++) {
      const a1 = a ^ b;
      const b1 = (a ^ ror4(b) ^ ((8 * a) & 15)) & 15;
      a = t[2 * r][a1];
      b = t[2 * r + 1][b1];
    }
    q[x] = (b << 4) | a;
  }
  return q;
}
const Q0 = makeQ(Q0T);
const Q1 = makeQ(Q1T);

/** Multiply in GF(2^8) modulo the given polynomial (0x169 for MDS, 0x14d for RS). */
function gfMul(a: number, b: number, poly: number): number {
  let r = 0;
  while (b) {
    if (b & 1) r ^= a;
    a <<= 1;
    if (a & 0x100) a ^= poly;
    b >>>= 1;
  }
  return r;
}

const MDS = [
  [0x01, 0xef, 0x5b, 0x5b],
  [0x5b, 0xef, 0xef, 0x01],
  [0xef, 0x5b, 0x01, 0xef],
  [0xef, 0x01, 0xef, 0x5b],
];
const RS = [
  [0x01, 0xa4, 0x55, 0x87, 0x5a, 0x58, 0xdb, 0x9e],
  [0xa4, 0x56, 0x82, 0xf3, 0x1e, 0xc6, 0x68, 0xe5],
  [0x02, 0xa1, 0xfc, 0xc1, 0x47, 0xae, 0x3d, 0x19],
  [0xa4, 0x55, 0x87, 0x5a, 0x58, 0xdb, 0x9e, 0x03],
];

/** MDS column i times byte y, as a little-endian word. */
function mdsColumn(i: number, y: number): number {
  return (gfMul(MDS[0][i], y, 0x169) | (gfMul(MDS[1][i], y, 0x169) << 8) |
    (gfMul(MDS[2][i], y, 0x169) << 16) | (gfMul(MDS[3][i], y, 0x169) << 24)) >>> 0;
}

// The q-box chains of h() per input byte, outermost first: byte i passes, in order, through
// CHAIN[i][0] (only for k=4), CHAIN[i][1] (k>=3), CHAIN[i][2], CHAIN[i][3], then CHAIN[i][4].
const CHAIN = [
  [Q1, Q1, Q0, Q0, Q1],
  [Q0, Q1, Q1, Q0, Q0],
  [Q0, Q0, Q0, Q1, Q1],
  [Q1, Q0, Q1, Q1, Q0],
];

/** The byte-i half of h(): the q chain with the key bytes xored between stages (L[0]..L[k-1]). */
function hByte(i: number, x: number, l: readonly number[]): number {
  const k = l.length;
  const c = CHAIN[i];
  const byte = (w: number): number => (w >>> (8 * i)) & 255;
  let y = x;
  if (k === 4) y = c[0][y] ^ byte(l[3]);
  if (k >= 3) y = c[1][y] ^ byte(l[2]);
  y = c[2][y] ^ byte(l[1]);
  y = c[3][y] ^ byte(l[0]);
  return c[4][y];
}

function h(x: number, l: readonly number[]): number {
  let r = 0;
  for (let i = 0; i < 4; i++) r ^= mdsColumn(i, hByte(i, (x >>> (8 * i)) & 255, l));
  return r >>> 0;
}

const rol = (x: number, n: number): number => ((x << n) | (x >>> (32 - n))) >>> 0;

export class Twofish implements WordCipher {
  readonly blockWords = 4;
  readonly littleEndian = true;
  // Int32Array: V8 loads Uint32 values of 2^31 and up as doubles, slowing every round.
  private readonly k = new Int32Array(40);
  private readonly s0 = new Int32Array(256);
  private readonly s1 = new Int32Array(256);
  private readonly s2 = new Int32Array(256);
  private readonly s3 = new Int32Array(256);

  constructor(key: Uint8Array) {
    if (key.length !== 16 && key.length !== 24 && key.length !== 32) {
      throw new RangeError(`Twofish key must be 16, 24 or 32 bytes, got ${key.length}`);
    }
    const kw = key.length / 8;
    const m: number[] = [];
    for (let i = 0; i < key.length; i += 4) m.push((key[i] | (key[i + 1] << 8) | (key[i + 2] << 16) | (key[i + 3] << 24)) >>> 0);
    const me = m.filter((_, i) => i % 2 === 0);
    const mo = m.filter((_, i) => i % 2 === 1);
    // S-box key words: RS times each 8 key bytes, then in reverse order (S_{k-1} first).
    const s: number[] = [];
    for (let i = 0; i < kw; i++) {
      let w = 0;
      for (let r = 0; r < 4; r++) {
        let v = 0;
        for (let j = 0; j < 8; j++) v ^= gfMul(RS[r][j], key[8 * i + j], 0x14d);
        w |= v << (8 * r);
      }
      s.unshift(w >>> 0);
    }
    for (let i = 0; i < 20; i++) {
      const a = h(Math.imul(2 * i, 0x01010101) >>> 0, me);
      const b = rol(h(Math.imul(2 * i + 1, 0x01010101) >>> 0, mo), 8);
      this.k[2 * i] = (a + b) | 0;
      this.k[2 * i + 1] = rol((a + 2 * b) >>> 0, 9) | 0;
    }
    const tables = [this.s0, this.s1, this.s2, this.s3];
    for (let i = 0; i < 4; i++) {
      for (let x = 0; x < 256; x++) tables[i][x] = mdsColumn(i, hByte(i, x, s));
    }
  }

  encrypt(w: Int32Array): void {
    const k = this.k, s0 = this.s0, s1 = this.s1, s2 = this.s2, s3 = this.s3;
    let r0 = w[0] ^ k[0], r1 = w[1] ^ k[1], r2 = w[2] ^ k[2], r3 = w[3] ^ k[3];
    for (let r = 0; r < 16; r += 2) {
      let t0 = s0[r0 & 255] ^ s1[(r0 >>> 8) & 255] ^ s2[(r0 >>> 16) & 255] ^ s3[r0 >>> 24];
      let t1 = s0[r1 >>> 24] ^ s1[r1 & 255] ^ s2[(r1 >>> 8) & 255] ^ s3[(r1 >>> 16) & 255];
      r2 ^= (t0 + t1 + k[2 * r + 8]) | 0;
      r2 = (r2 >>> 1) | (r2 << 31);
      r3 = ((r3 << 1) | (r3 >>> 31)) ^ ((t0 + 2 * t1 + k[2 * r + 9]) | 0);
      t0 = s0[r2 & 255] ^ s1[(r2 >>> 8) & 255] ^ s2[(r2 >>> 16) & 255] ^ s3[r2 >>> 24];
      t1 = s0[r3 >>> 24] ^ s1[r3 & 255] ^ s2[(r3 >>> 8) & 255] ^ s3[(r3 >>> 16) & 255];
      r0 ^= (t0 + t1 + k[2 * r + 10]) | 0;
      r0 = (r0 >>> 1) | (r0 << 31);
      r1 = ((r1 << 1) | (r1 >>> 31)) ^ ((t0 + 2 * t1 + k[2 * r + 11]) | 0);
    }
    w[0] = r2 ^ k[4];
    w[1] = r3 ^ k[5];
    w[2] = r0 ^ k[6];
    w[3] = r1 ^ k[7];
  }

  decrypt(w: Int32Array): void {
    const k = this.k, s0 = this.s0, s1 = this.s1, s2 = this.s2, s3 = this.s3;
    let r2 = w[0] ^ k[4], r3 = w[1] ^ k[5], r0 = w[2] ^ k[6], r1 = w[3] ^ k[7];
    for (let r = 14; r >= 0; r -= 2) {
      let t0 = s0[r2 & 255] ^ s1[(r2 >>> 8) & 255] ^ s2[(r2 >>> 16) & 255] ^ s3[r2 >>> 24];
      let t1 = s0[r3 >>> 24] ^ s1[r3 & 255] ^ s2[(r3 >>> 8) & 255] ^ s3[(r3 >>> 16) & 255];
      r0 = ((r0 << 1) | (r0 >>> 31)) ^ ((t0 + t1 + k[2 * r + 10]) | 0);
      r1 ^= (t0 + 2 * t1 + k[2 * r + 11]) | 0;
      r1 = (r1 >>> 1) | (r1 << 31);
      t0 = s0[r0 & 255] ^ s1[(r0 >>> 8) & 255] ^ s2[(r0 >>> 16) & 255] ^ s3[r0 >>> 24];
      t1 = s0[r1 >>> 24] ^ s1[r1 & 255] ^ s2[(r1 >>> 8) & 255] ^ s3[(r1 >>> 16) & 255];
      r2 = ((r2 << 1) | (r2 >>> 31)) ^ ((t0 + t1 + k[2 * r + 8]) | 0);
      r3 ^= (t0 + 2 * t1 + k[2 * r + 9]) | 0;
      r3 = (r3 >>> 1) | (r3 << 31);
    }
    w[0] = r0 ^ k[0];
    w[1] = r1 ^ k[1];
    w[2] = r2 ^ k[2];
    w[3] = r3 ^ k[3];
  }
}
