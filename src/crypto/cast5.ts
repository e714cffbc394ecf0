/**
 * CAST-128 a.k.a. CAST5 (RFC 2144): 8-byte block, big-endian words, keys of 5..16 bytes
 * (short keys are zero-padded; keys of 10 bytes or less use 12 rounds). Pure TypeScript fallback
 * for when OpenSSL 3 runs without its legacy provider.
 */
import { S1, S2, S3, S4, S5, S6, S7, S8 } from './cast-sboxes.js';
import type { WordCipher } from './wordcipher.js';

// RFC 2144 section 2.4 key schedule, written as tables rather than 32 lines of formulas.
// Rows of "z from x" / "x from z": [dest byte offset, source word offset, the 4 indices for
// S5..S8, the index for the fifth term]; the fifth term's S-box is S7, S8, S5, S6 by row.
const Z_FROM_X: readonly (readonly number[])[] = [
  [0, 0, 0xd, 0xf, 0xc, 0xe, 0x8], [4, 8, 0x0, 0x2, 0x1, 0x3, 0xa],
  [8, 12, 0x7, 0x6, 0x5, 0x4, 0x9], [12, 4, 0xa, 0x9, 0xb, 0x8, 0xb],
];
const X_FROM_Z: readonly (readonly number[])[] = [
  [0, 8, 0x5, 0x7, 0x4, 0x6, 0x0], [4, 0, 0x0, 0x2, 0x1, 0x3, 0x2],
  [8, 4, 0x7, 0x6, 0x5, 0x4, 0x1], [12, 12, 0xa, 0x9, 0xb, 0x8, 0x3],
];
// The four subkey-extraction patterns, applied in turn to z, x, z, x: per subkey, the byte
// indices for S5, S6, S7, S8, then the index for a fifth term whose S-box is S5+row.
const K_PATTERNS: readonly (readonly (readonly number[])[])[] = [
  [[0x8, 0x9, 0x7, 0x6, 0x2], [0xa, 0xb, 0x5, 0x4, 0x6], [0xc, 0xd, 0x3, 0x2, 0x9], [0xe, 0xf, 0x1, 0x0, 0xc]],
  [[0x3, 0x2, 0xc, 0xd, 0x8], [0x1, 0x0, 0xe, 0xf, 0xd], [0x7, 0x6, 0x8, 0x9, 0x3], [0x5, 0x4, 0xa, 0xb, 0x7]],
  [[0x3, 0x2, 0xc, 0xd, 0x9], [0x1, 0x0, 0xe, 0xf, 0xc], [0x7, 0x6, 0x8, 0x9, 0x2], [0x5, 0x4, 0xa, 0xb, 0x6]],
  [[0x8, 0x9, 0x7, 0x6, 0x3], [0xa, 0xb, 0x5, 0x4, 0x7], [0xc, 0xd, 0x3, 0x2, 0x8], [0xe, 0xf, 0x1, 0x0, 0xd]],
];
const SK = [S5, S6, S7, S8];

function be32(b: Uint8Array, o: number): number {
  return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
}

/**
 * One "x from z" or "z from x" step. The rows after the first read bytes of dst written by the
 * rows before them, so dst is updated row by row.
 */
function mix(dst: Uint8Array, src: Uint8Array, rows: readonly (readonly number[])[]): void {
  rows.forEach(([d, s, a, b, c, e, f5], row) => {
    const t = row === 0 ? src : dst; // only the first row reads the other array's bytes
    const w = be32(src, s) ^ S5[t[a]] ^ S6[t[b]] ^ S7[t[c]] ^ S8[t[e]] ^ SK[(row + 2) & 3][src[f5]];
    dst[d] = w >>> 24; dst[d + 1] = w >>> 16; dst[d + 2] = w >>> 8; dst[d + 3] = w;
  });
}

function schedule(key: Uint8Array): Uint32Array {
  const x = new Uint8Array(16);
  x.set(key);
  const z = new Uint8Array(16);
  const k = new Uint32Array(32);
  let n = 0;
  for (let half = 0; half < 2; half++) {
    for (let p = 0; p < 4; p++) {
      const even = p % 2 === 0;
      if (even) mix(z, x, Z_FROM_X); else mix(x, z, X_FROM_Z);
      const t = even ? z : x;
      K_PATTERNS[p].forEach(([a, b, c, d, e], row) => {
        k[n++] = (S5[t[a]] ^ S6[t[b]] ^ S7[t[c]] ^ S8[t[d]] ^ SK[row][t[e]]) >>> 0;
      });
    }
  }
  return k;
}

export class Cast5 implements WordCipher {
  readonly blockWords = 2;
  readonly littleEndian = false;
  private readonly km: Int32Array;
  private readonly kr: Uint8Array;
  private readonly rounds: 12 | 16;

  constructor(key: Uint8Array) {
    if (key.length < 5 || key.length > 16) throw new RangeError(`CAST5 key must be 5..16 bytes, got ${key.length}`);
    const k = schedule(key);
    this.km = Int32Array.from(k.subarray(0, 16));
    this.kr = Uint8Array.from(k.subarray(16), (v) => v & 31);
    this.rounds = key.length <= 10 ? 12 : 16;
  }

  // Rounds written out (types cycle 1, 2, 3; RFC 2144 section 2.2), swapping the roles of l
  // and r instead of the values; a loop with a type switch ran at a third of the speed.
  encrypt(w: Int32Array): void {
    const k = this.km, q = this.kr;
    let l = w[0], r = w[1];
    l ^= f1(r, k[0], q[0]); r ^= f2(l, k[1], q[1]); l ^= f3(r, k[2], q[2]);
    r ^= f1(l, k[3], q[3]); l ^= f2(r, k[4], q[4]); r ^= f3(l, k[5], q[5]);
    l ^= f1(r, k[6], q[6]); r ^= f2(l, k[7], q[7]); l ^= f3(r, k[8], q[8]);
    r ^= f1(l, k[9], q[9]); l ^= f2(r, k[10], q[10]); r ^= f3(l, k[11], q[11]);
    if (this.rounds === 16) {
      l ^= f1(r, k[12], q[12]); r ^= f2(l, k[13], q[13]); l ^= f3(r, k[14], q[14]); r ^= f1(l, k[15], q[15]);
    }
    w[0] = r;
    w[1] = l;
  }

  decrypt(w: Int32Array): void {
    const k = this.km, q = this.kr;
    let l = w[0], r = w[1];
    if (this.rounds === 16) {
      l ^= f1(r, k[15], q[15]); r ^= f3(l, k[14], q[14]); l ^= f2(r, k[13], q[13]); r ^= f1(l, k[12], q[12]);
    }
    l ^= f3(r, k[11], q[11]); r ^= f2(l, k[10], q[10]); l ^= f1(r, k[9], q[9]);
    r ^= f3(l, k[8], q[8]); l ^= f2(r, k[7], q[7]); r ^= f1(l, k[6], q[6]);
    l ^= f3(r, k[5], q[5]); r ^= f2(l, k[4], q[4]); l ^= f1(r, k[3], q[3]);
    r ^= f3(l, k[2], q[2]); l ^= f2(r, k[1], q[1]); r ^= f1(l, k[0], q[0]);
    w[0] = r;
    w[1] = l;
  }
}

// The three CAST round functions (RFC 2144 section 2.2), shared with CAST-256. Separate
// functions rather than one with a type switch so V8 inlines each at its call site.
export function f1(d: number, km: number, kr: number): number {
  let i = (km + d) | 0;
  i = (i << kr) | (i >>> (32 - kr));
  return (((S1[i >>> 24] ^ S2[(i >>> 16) & 255]) - S3[(i >>> 8) & 255] | 0) + S4[i & 255]) | 0;
}

export function f2(d: number, km: number, kr: number): number {
  let i = km ^ d;
  i = (i << kr) | (i >>> (32 - kr));
  return ((S1[i >>> 24] - S2[(i >>> 16) & 255] | 0) + S3[(i >>> 8) & 255] | 0) ^ S4[i & 255];
}

export function f3(d: number, km: number, kr: number): number {
  let i = (km - d) | 0;
  i = (i << kr) | (i >>> (32 - kr));
  return (((S1[i >>> 24] + S2[(i >>> 16) & 255] | 0) ^ S3[(i >>> 8) & 255]) - S4[i & 255]) | 0;
}
