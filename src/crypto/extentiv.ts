/**
 * eCryptfs extent IVs in batches (ECRYPTFS-FORMAT §4.2):
 * iv_n = MD5(root_iv || decimal(n) zero-padded to 16 bytes).
 * One MD5 per 4 KiB extent is on the path of every read and write; a general MD5 call costs as
 * much as the AES work on the extent, so this one is unrolled for the fixed 32-byte message (the
 * padding words are constants) and takes the root IV's words once per batch. Batches go 8 at a
 * time through WebAssembly SIMD (md5x4.ts: ~30 -> ~8 us per MiB of extents), and the decimal index
 * is carried from one extent to the next instead of divided out each time.
 * Single extents too (a 4 KiB read or write): the unrolled JavaScript MD5 is faster only once
 * TurboFan has compiled it (~0.23 against ~0.5 us), and a mount that served large transfers first
 * met it cold: its first few hundred 4 KiB READs ran it interpreted (2-20 us each) and compiled it
 * on the other core. Daemon CPU during the bench's random step (2,000 reads, 207 misses, after a
 * 128 MiB write and read), 4 interleaved rounds at load ~9: 17.7-24.7 -> 14.5-18.2 ms.
 */

import { MD5X4_BYTES, md5x4, type Md5x4 } from './md5x4.js';

const words = new Int32Array(8);

function le32(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24);
}

/**
 * IVs of extents first..first+count-1 written to out[outOff..outOff+16*count). The index is
 * printed as the kernel's "%lld" (at most 16 digits are ever needed: 10^16 extents is 40 ZB).
 */
export function extentIvsInto(root: Uint8Array, first: number, count: number, out: Uint8Array, outOff = 0): void {
  if (root.length < 16) throw new RangeError('root IV must be 16 bytes');
  if (!Number.isSafeInteger(first) || first < 0 || (count > 0 && !Number.isSafeInteger(first + count - 1))) throw new RangeError(`bad extent index ${first}`);
  if (out.length < outOff + 16 * count) throw new RangeError(`IV output of ${out.length} bytes is too short for ${count} IVs`);
  const x4 = count > 0 ? md5x4() : null;
  if (x4) return simdIvs(x4, root, first, count, out, outOff);
  for (let i = 0; i < 4; i++) words[i] = le32(root, 4 * i);
  let len = 0;
  for (let e = 0; e < count; e++) {
    len = e === 0 ? digitWords(first, words, 4) : nextDigits(first + e, words, 4, len);
    md5Of32(words, out, outOff + 16 * e);
  }
}

/** Extents per run of the four-lane MD5: as many pairs of groups of 4 as its memory holds after the root. */
const SIMD_RUN = Math.floor((MD5X4_BYTES - 16) / 128) * 8;

/** extentIvsInto four at a time (md5x4.ts): message words 4..7 written lane by lane, digests copied out. */
function simdIvs(x4: Md5x4, root: Uint8Array, first: number, count: number, out: Uint8Array, outOff: number): void {
  const w = x4.words;
  for (let i = 0; i < 4; i++) w[i] = le32(root, 4 * i);
  for (let done = 0; done < count; ) {
    const n = Math.min(SIMD_RUN, count - done);
    let len = 0;
    for (let e = 0; e < n; e++) {
      len = e === 0 ? digitWords(first + done, words, 4) : nextDigits(first + done + e, words, 4, len);
      // Word k of lane l of group g at int 4 + 16g + 4k + l.
      const at = 4 + ((e >> 2) << 4) + (e & 3);
      w[at] = words[4]; w[at + 4] = words[5]; w[at + 8] = words[6]; w[at + 12] = words[7];
    }
    x4.run((n + 7) >> 3);
    // The digests are in extent order from byte 16: a memcpy out.
    Buffer.from(x4.mem.buffer, 16, 16 * n).copy(out, outOff + 16 * done);
    done += n;
  }
}

/**
 * The kernel's "%lld" of n, zero-padded to 16 bytes, as 4 little-endian words into m[at..at+4);
 * returns the digit count.
 */
function digitWords(n: number, m: Int32Array, at: number): number {
  let len = 1;
  for (let p = 10; p <= n && len < 16; p *= 10) len++;
  m[at] = 0; m[at + 1] = 0; m[at + 2] = 0; m[at + 3] = 0;
  // The decimal digits straight into the message words, least significant digit last.
  for (let k = len - 1, x = n; k >= 0; k--) {
    const q = Math.floor(x / 10);
    m[at + (k >> 2)] |= (48 + (x - q * 10)) << ((k & 3) << 3);
    x = q;
  }
  return len;
}

/**
 * m[at..at+4) holds the `len` digits of n - 1: make them n's by adding one in place (a batch's
 * extents are consecutive; a division per digit costs more than the carry). Returns n's digit count.
 */
function nextDigits(n: number, m: Int32Array, at: number, len: number): number {
  for (let k = len - 1; k >= 0; k--) {
    const w = at + (k >> 2), sh = (k & 3) << 3;
    if (((m[w] >>> sh) & 255) !== 57) {
      m[w] += 1 << sh;
      return len;
    }
    m[w] -= 9 << sh; // '9' -> '0', carry on
  }
  return digitWords(n, m, at); // all nines: one digit more
}

/** MD5 of 32 bytes given as 8 little-endian words, into out[outOff..outOff+16). */
export function md5Of32(m: Int32Array, out: Uint8Array, outOff: number): void {
  const m0 = m[0], m1 = m[1], m2 = m[2], m3 = m[3], m4 = m[4], m5 = m[5], m6 = m[6], m7 = m[7];
  let a = 0x67452301, b = 0xefcdab89 | 0, c = 0x98badcfe | 0, d = 0x10325476;
  let x: number;
  x = (a + ((b & c) | (~b & d)) + 0xd76aa478 + m0) | 0; a = (b + ((x << 7) | (x >>> 25))) | 0;
  x = (d + ((a & b) | (~a & c)) + 0xe8c7b756 + m1) | 0; d = (a + ((x << 12) | (x >>> 20))) | 0;
  x = (c + ((d & a) | (~d & b)) + 0x242070db + m2) | 0; c = (d + ((x << 17) | (x >>> 15))) | 0;
  x = (b + ((c & d) | (~c & a)) + 0xc1bdceee + m3) | 0; b = (c + ((x << 22) | (x >>> 10))) | 0;
  x = (a + ((b & c) | (~b & d)) + 0xf57c0faf + m4) | 0; a = (b + ((x << 7) | (x >>> 25))) | 0;
  x = (d + ((a & b) | (~a & c)) + 0x4787c62a + m5) | 0; d = (a + ((x << 12) | (x >>> 20))) | 0;
  x = (c + ((d & a) | (~d & b)) + 0xa8304613 + m6) | 0; c = (d + ((x << 17) | (x >>> 15))) | 0;
  x = (b + ((c & d) | (~c & a)) + 0xfd469501 + m7) | 0; b = (c + ((x << 22) | (x >>> 10))) | 0;
  x = (a + ((b & c) | (~b & d)) + 0x698098d8 + 0x80) | 0; a = (b + ((x << 7) | (x >>> 25))) | 0;
  x = (d + ((a & b) | (~a & c)) + 0x8b44f7af) | 0; d = (a + ((x << 12) | (x >>> 20))) | 0;
  x = (c + ((d & a) | (~d & b)) + 0xffff5bb1) | 0; c = (d + ((x << 17) | (x >>> 15))) | 0;
  x = (b + ((c & d) | (~c & a)) + 0x895cd7be) | 0; b = (c + ((x << 22) | (x >>> 10))) | 0;
  x = (a + ((b & c) | (~b & d)) + 0x6b901122) | 0; a = (b + ((x << 7) | (x >>> 25))) | 0;
  x = (d + ((a & b) | (~a & c)) + 0xfd987193) | 0; d = (a + ((x << 12) | (x >>> 20))) | 0;
  x = (c + ((d & a) | (~d & b)) + 0xa679438e + 256) | 0; c = (d + ((x << 17) | (x >>> 15))) | 0;
  x = (b + ((c & d) | (~c & a)) + 0x49b40821) | 0; b = (c + ((x << 22) | (x >>> 10))) | 0;
  x = (a + ((d & b) | (~d & c)) + 0xf61e2562 + m1) | 0; a = (b + ((x << 5) | (x >>> 27))) | 0;
  x = (d + ((c & a) | (~c & b)) + 0xc040b340 + m6) | 0; d = (a + ((x << 9) | (x >>> 23))) | 0;
  x = (c + ((b & d) | (~b & a)) + 0x265e5a51) | 0; c = (d + ((x << 14) | (x >>> 18))) | 0;
  x = (b + ((a & c) | (~a & d)) + 0xe9b6c7aa + m0) | 0; b = (c + ((x << 20) | (x >>> 12))) | 0;
  x = (a + ((d & b) | (~d & c)) + 0xd62f105d + m5) | 0; a = (b + ((x << 5) | (x >>> 27))) | 0;
  x = (d + ((c & a) | (~c & b)) + 0x2441453) | 0; d = (a + ((x << 9) | (x >>> 23))) | 0;
  x = (c + ((b & d) | (~b & a)) + 0xd8a1e681) | 0; c = (d + ((x << 14) | (x >>> 18))) | 0;
  x = (b + ((a & c) | (~a & d)) + 0xe7d3fbc8 + m4) | 0; b = (c + ((x << 20) | (x >>> 12))) | 0;
  x = (a + ((d & b) | (~d & c)) + 0x21e1cde6) | 0; a = (b + ((x << 5) | (x >>> 27))) | 0;
  x = (d + ((c & a) | (~c & b)) + 0xc33707d6 + 256) | 0; d = (a + ((x << 9) | (x >>> 23))) | 0;
  x = (c + ((b & d) | (~b & a)) + 0xf4d50d87 + m3) | 0; c = (d + ((x << 14) | (x >>> 18))) | 0;
  x = (b + ((a & c) | (~a & d)) + 0x455a14ed + 0x80) | 0; b = (c + ((x << 20) | (x >>> 12))) | 0;
  x = (a + ((d & b) | (~d & c)) + 0xa9e3e905) | 0; a = (b + ((x << 5) | (x >>> 27))) | 0;
  x = (d + ((c & a) | (~c & b)) + 0xfcefa3f8 + m2) | 0; d = (a + ((x << 9) | (x >>> 23))) | 0;
  x = (c + ((b & d) | (~b & a)) + 0x676f02d9 + m7) | 0; c = (d + ((x << 14) | (x >>> 18))) | 0;
  x = (b + ((a & c) | (~a & d)) + 0x8d2a4c8a) | 0; b = (c + ((x << 20) | (x >>> 12))) | 0;
  x = (a + (b ^ c ^ d) + 0xfffa3942 + m5) | 0; a = (b + ((x << 4) | (x >>> 28))) | 0;
  x = (d + (a ^ b ^ c) + 0x8771f681 + 0x80) | 0; d = (a + ((x << 11) | (x >>> 21))) | 0;
  x = (c + (d ^ a ^ b) + 0x6d9d6122) | 0; c = (d + ((x << 16) | (x >>> 16))) | 0;
  x = (b + (c ^ d ^ a) + 0xfde5380c + 256) | 0; b = (c + ((x << 23) | (x >>> 9))) | 0;
  x = (a + (b ^ c ^ d) + 0xa4beea44 + m1) | 0; a = (b + ((x << 4) | (x >>> 28))) | 0;
  x = (d + (a ^ b ^ c) + 0x4bdecfa9 + m4) | 0; d = (a + ((x << 11) | (x >>> 21))) | 0;
  x = (c + (d ^ a ^ b) + 0xf6bb4b60 + m7) | 0; c = (d + ((x << 16) | (x >>> 16))) | 0;
  x = (b + (c ^ d ^ a) + 0xbebfbc70) | 0; b = (c + ((x << 23) | (x >>> 9))) | 0;
  x = (a + (b ^ c ^ d) + 0x289b7ec6) | 0; a = (b + ((x << 4) | (x >>> 28))) | 0;
  x = (d + (a ^ b ^ c) + 0xeaa127fa + m0) | 0; d = (a + ((x << 11) | (x >>> 21))) | 0;
  x = (c + (d ^ a ^ b) + 0xd4ef3085 + m3) | 0; c = (d + ((x << 16) | (x >>> 16))) | 0;
  x = (b + (c ^ d ^ a) + 0x4881d05 + m6) | 0; b = (c + ((x << 23) | (x >>> 9))) | 0;
  x = (a + (b ^ c ^ d) + 0xd9d4d039) | 0; a = (b + ((x << 4) | (x >>> 28))) | 0;
  x = (d + (a ^ b ^ c) + 0xe6db99e5) | 0; d = (a + ((x << 11) | (x >>> 21))) | 0;
  x = (c + (d ^ a ^ b) + 0x1fa27cf8) | 0; c = (d + ((x << 16) | (x >>> 16))) | 0;
  x = (b + (c ^ d ^ a) + 0xc4ac5665 + m2) | 0; b = (c + ((x << 23) | (x >>> 9))) | 0;
  x = (a + (c ^ (b | ~d)) + 0xf4292244 + m0) | 0; a = (b + ((x << 6) | (x >>> 26))) | 0;
  x = (d + (b ^ (a | ~c)) + 0x432aff97 + m7) | 0; d = (a + ((x << 10) | (x >>> 22))) | 0;
  x = (c + (a ^ (d | ~b)) + 0xab9423a7 + 256) | 0; c = (d + ((x << 15) | (x >>> 17))) | 0;
  x = (b + (d ^ (c | ~a)) + 0xfc93a039 + m5) | 0; b = (c + ((x << 21) | (x >>> 11))) | 0;
  x = (a + (c ^ (b | ~d)) + 0x655b59c3) | 0; a = (b + ((x << 6) | (x >>> 26))) | 0;
  x = (d + (b ^ (a | ~c)) + 0x8f0ccc92 + m3) | 0; d = (a + ((x << 10) | (x >>> 22))) | 0;
  x = (c + (a ^ (d | ~b)) + 0xffeff47d) | 0; c = (d + ((x << 15) | (x >>> 17))) | 0;
  x = (b + (d ^ (c | ~a)) + 0x85845dd1 + m1) | 0; b = (c + ((x << 21) | (x >>> 11))) | 0;
  x = (a + (c ^ (b | ~d)) + 0x6fa87e4f + 0x80) | 0; a = (b + ((x << 6) | (x >>> 26))) | 0;
  x = (d + (b ^ (a | ~c)) + 0xfe2ce6e0) | 0; d = (a + ((x << 10) | (x >>> 22))) | 0;
  x = (c + (a ^ (d | ~b)) + 0xa3014314 + m6) | 0; c = (d + ((x << 15) | (x >>> 17))) | 0;
  x = (b + (d ^ (c | ~a)) + 0x4e0811a1) | 0; b = (c + ((x << 21) | (x >>> 11))) | 0;
  x = (a + (c ^ (b | ~d)) + 0xf7537e82 + m4) | 0; a = (b + ((x << 6) | (x >>> 26))) | 0;
  x = (d + (b ^ (a | ~c)) + 0xbd3af235) | 0; d = (a + ((x << 10) | (x >>> 22))) | 0;
  x = (c + (a ^ (d | ~b)) + 0x2ad7d2bb + m2) | 0; c = (d + ((x << 15) | (x >>> 17))) | 0;
  x = (b + (d ^ (c | ~a)) + 0xeb86d391) | 0; b = (c + ((x << 21) | (x >>> 11))) | 0;
  a = (a + 0x67452301) | 0;
  b = (b + 0xefcdab89) | 0;
  c = (c + 0x98badcfe) | 0;
  d = (d + 0x10325476) | 0;
  out[outOff] = a; out[outOff + 1] = a >>> 8; out[outOff + 2] = a >>> 16; out[outOff + 3] = a >>> 24;
  out[outOff + 4] = b; out[outOff + 5] = b >>> 8; out[outOff + 6] = b >>> 16; out[outOff + 7] = b >>> 24;
  out[outOff + 8] = c; out[outOff + 9] = c >>> 8; out[outOff + 10] = c >>> 16; out[outOff + 11] = c >>> 24;
  out[outOff + 12] = d; out[outOff + 13] = d >>> 8; out[outOff + 14] = d >>> 16; out[outOff + 15] = d >>> 24;
}
