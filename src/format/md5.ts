/**
 * MD5 of one short message (at most 55 bytes, i.e. one 64-byte block), in plain TypeScript.
 * Extent IVs are MD5 of 32 bytes, one per 4 KiB extent: createHash() costs ~1-2 us a call,
 * this costs a fraction of that, which matters at GB/s.
 */
const S = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21];
// K[i] = floor(abs(sin(i + 1)) * 2^32), computed rather than typed.
const K = new Int32Array(64).map((_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0);
const M = new Int32Array(16);
const blockBytes = new Uint8Array(64);

/** MD5 of `msg` (length <= 55) written into `out` at `outOff` (16 bytes). */
export function md5Short(msg: Uint8Array, out: Uint8Array, outOff = 0): void {
  const n = msg.length;
  if (n > 55) throw new RangeError('md5Short takes at most 55 bytes');
  blockBytes.fill(0);
  blockBytes.set(msg);
  blockBytes[n] = 0x80;
  const bits = n * 8;
  blockBytes[56] = bits & 0xff;
  blockBytes[57] = (bits >>> 8) & 0xff;
  for (let i = 0; i < 16; i++) {
    const j = i * 4;
    M[i] = blockBytes[j] | (blockBytes[j + 1] << 8) | (blockBytes[j + 2] << 16) | (blockBytes[j + 3] << 24);
  }
  let a = 0x67452301 | 0;
  let b = 0xefcdab89 | 0;
  let c = 0x98badcfe | 0;
  let d = 0x10325476 | 0;
  for (let i = 0; i < 64; i++) {
    let f: number;
    let g: number;
    if (i < 16) {
      f = (b & c) | (~b & d);
      g = i;
    } else if (i < 32) {
      f = (d & b) | (~d & c);
      g = (5 * i + 1) & 15;
    } else if (i < 48) {
      f = b ^ c ^ d;
      g = (3 * i + 5) & 15;
    } else {
      f = c ^ (b | ~d);
      g = (7 * i) & 15;
    }
    const t = d;
    d = c;
    c = b;
    const x = (a + f + K[i] + M[g]) | 0;
    b = (b + ((x << S[i]) | (x >>> (32 - S[i])))) | 0;
    a = t;
  }
  const h = [(a + 0x67452301) | 0, (b + 0xefcdab89) | 0, (c + 0x98badcfe) | 0, (d + 0x10325476) | 0];
  for (let i = 0; i < 4; i++) {
    out[outOff + i * 4] = h[i] & 0xff;
    out[outOff + i * 4 + 1] = (h[i] >>> 8) & 0xff;
    out[outOff + i * 4 + 2] = (h[i] >>> 16) & 0xff;
    out[outOff + i * 4 + 3] = (h[i] >>> 24) & 0xff;
  }
}
