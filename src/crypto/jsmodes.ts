/**
 * ECB and per-extent CBC over a pure-TypeScript WordCipher: byte/word conversion through DataView
 * in the cipher's word order, with all scratch allocated once per call, none per block.
 */
import type { WordCipher } from './wordcipher.js';
import { ivCount, ivOf, type ExtentIvs } from './types.js';

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function checkLength(len: number, bs: number): void {
  if (len % bs !== 0) throw new RangeError(`data length ${len} is not a multiple of the ${bs}-byte cipher block`);
}

export function jsEcb(c: WordCipher, data: Uint8Array, encrypt: boolean): Buffer {
  const bs = c.blockWords * 4;
  checkLength(data.length, bs);
  const out = Buffer.alloc(data.length);
  const sv = view(data), dv = view(out), le = c.littleEndian, n = c.blockWords;
  const w = new Int32Array(n);
  for (let o = 0; o < data.length; o += bs) {
    for (let j = 0; j < n; j++) w[j] = sv.getInt32(o + 4 * j, le);
    if (encrypt) c.encrypt(w); else c.decrypt(w);
    for (let j = 0; j < n; j++) dv.setInt32(o + 4 * j, w[j], le);
  }
  return out;
}

export function jsCbcEncryptExtents(c: WordCipher, src: Uint8Array, dst: Uint8Array, extentSize: number, ivs: ExtentIvs): void {
  const bs = c.blockWords * 4, n = c.blockWords, le = c.littleEndian;
  checkExtents(src, dst, extentSize, ivs, bs);
  const sv = view(src), dv = view(dst);
  const w = new Int32Array(n);
  for (let e = 0, count = ivCount(ivs); e < count; e++) {
    const iv = view(ivOf(ivs, e));
    for (let j = 0; j < n; j++) w[j] = iv.getInt32(4 * j, le);
    const end = (e + 1) * extentSize;
    for (let o = e * extentSize; o < end; o += bs) {
      // w holds the previous ciphertext block (or the IV): xor in the plaintext and encrypt.
      for (let j = 0; j < n; j++) w[j] ^= sv.getInt32(o + 4 * j, le);
      c.encrypt(w);
      for (let j = 0; j < n; j++) dv.setInt32(o + 4 * j, w[j], le);
    }
  }
}

export function jsCbcDecryptExtents(c: WordCipher, src: Uint8Array, dst: Uint8Array, extentSize: number, ivs: ExtentIvs): void {
  const bs = c.blockWords * 4, n = c.blockWords, le = c.littleEndian;
  checkExtents(src, dst, extentSize, ivs, bs);
  const sv = view(src), dv = view(dst);
  const w = new Int32Array(n), prev = new Int32Array(n), cur = new Int32Array(n);
  for (let e = 0, count = ivCount(ivs); e < count; e++) {
    const iv = view(ivOf(ivs, e));
    for (let j = 0; j < n; j++) prev[j] = iv.getInt32(4 * j, le);
    const end = (e + 1) * extentSize;
    for (let o = e * extentSize; o < end; o += bs) {
      // Read the ciphertext block before writing its plaintext: dst may be src.
      for (let j = 0; j < n; j++) { cur[j] = sv.getInt32(o + 4 * j, le); w[j] = cur[j]; }
      c.decrypt(w);
      for (let j = 0; j < n; j++) { dv.setInt32(o + 4 * j, w[j] ^ prev[j], le); prev[j] = cur[j]; }
    }
  }
}

/** Argument checks shared by every CBC implementation (also the OpenSSL one). */
export function checkExtents(src: Uint8Array, dst: Uint8Array, extentSize: number, ivs: ExtentIvs, bs: number): void {
  if (extentSize <= 0 || extentSize % bs !== 0) {
    throw new RangeError(`extent size ${extentSize} is not a positive multiple of the ${bs}-byte cipher block`);
  }
  const count = ivCount(ivs);
  const need = extentSize * count;
  if (ivs instanceof Uint8Array && ivs.length % 16 !== 0) throw new RangeError(`packed IVs of ${ivs.length} bytes are not 16 bytes each`);
  if (src.length < need || dst.length < need) {
    throw new RangeError(`${count} extents of ${extentSize} bytes need ${need} bytes; src has ${src.length}, dst ${dst.length}`);
  }
  if (!(ivs instanceof Uint8Array)) for (const iv of ivs) if (iv.length < bs) throw new RangeError(`IV of ${iv.length} bytes is shorter than the ${bs}-byte block`);
}
