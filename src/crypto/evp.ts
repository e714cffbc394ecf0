/**
 * Per-extent CBC through OpenSSL's EVP API called directly, with koffi (the project's FFI, already
 * a dependency for the lower layer's system calls) into the OpenSSL that Node itself carries
 * (`dlopen(NULL)`: Node's own symbols, or the libcrypto it is linked against).
 *
 * Why: node:crypto's Cipher.update() allocates its output on every call and costs about half
 * the AES work of a 4 KiB extent in fixed overhead; CBC encryption needs one call per extent.
 * EVP_EncryptUpdate writes into our buffer (shared memory too) at the cost of one FFI call, and
 * CBC decryption of a whole run is one EVP_DecryptUpdate in place. Measured on this VM, MB per
 * CPU-second: encrypt 1031 -> ~1480 (openssl speed: ~1640), decrypt 5350 -> ~12500.
 *
 * Only AES and 3DES go this way (default provider ciphers); the result is checked against
 * node:crypto once per process and any failure (no koffi, no symbols, a mismatch) leaves
 * node:crypto in charge. ECRYPTFS_FFI_CRYPTO=0 turns it off.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { AesMultiCbc } from './aesmb.js';
import { bindNodeOpenssl } from './openssl.js';

type Fn = (...args: unknown[]) => unknown;

interface Evp {
  ctxNew: Fn;
  ctxFree: Fn;
  setPadding: Fn;
  encInit: Fn;
  decInit: Fn;
  encUpdate: Fn;
  decUpdate: Fn;
  ciphers: Record<string, Fn>;
}

let evp: Evp | null | undefined;
/** Bytes per EVP_DecryptUpdate call at most (its length is an int); a variable so tests can lower it. */
let MAX_RUN = 256 << 20;

/** For tests: the largest run one EVP call decrypts. */
export function setMaxEvpRun(bytes: number): void {
  MAX_RUN = bytes;
}
/** Whether the self-test passed (undefined: not run yet). */
let verified: boolean | undefined;

function bind(): Evp | null {
  if (evp !== undefined) return evp;
  const u8 = 'const uint8_t *';
  evp = bindNodeOpenssl<Fn, Evp>((func) => ({
    ctxNew: func('void *EVP_CIPHER_CTX_new(void)'),
    ctxFree: func('void EVP_CIPHER_CTX_free(void *)'),
    setPadding: func('int EVP_CIPHER_CTX_set_padding(void *, int)'),
    encInit: func(`int EVP_EncryptInit_ex(void *, const void *, void *, ${u8}, ${u8})`),
    decInit: func(`int EVP_DecryptInit_ex(void *, const void *, void *, ${u8}, ${u8})`),
    encUpdate: func(`int EVP_EncryptUpdate(void *, uint8_t *, int *, ${u8}, int)`),
    decUpdate: func(`int EVP_DecryptUpdate(void *, uint8_t *, int *, ${u8}, int)`),
    ciphers: {
      'aes-128-cbc': func('const void *EVP_aes_128_cbc(void)'),
      'aes-192-cbc': func('const void *EVP_aes_192_cbc(void)'),
      'aes-256-cbc': func('const void *EVP_aes_256_cbc(void)'),
      'des-ede3-cbc': func('const void *EVP_des_ede3_cbc(void)'),
    },
  }));
  return evp;
}

function u8(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

const live = new FinalizationRegistry<{ enc: unknown; dec: unknown }>((c) => freeCtx(c));

function freeCtx(c: { enc: unknown; dec: unknown }): void {
  // EVP_CIPHER_CTX_free cleanses the key schedule.
  if (c.enc) evp!.ctxFree(c.enc);
  if (c.dec) evp!.ctxFree(c.dec);
  c.enc = c.dec = null;
}

/** Keyed CBC contexts (one for each direction) of one cipher. */
export class EvpCbc {
  private readonly ctx: { enc: unknown; dec: unknown };
  private readonly outLen = new Int32Array(1);
  /** Each extent's last ciphertext block, saved before an in-place decrypt; reused across calls. */
  private last = new Uint8Array(0);
  /** AES: multi-buffer encryption of 8 extents at once, where available (aesmb.ts). */
  private readonly multi: AesMultiCbc | undefined;

  /** Use EvpCbc.create (it checks availability); throws if OpenSSL refuses the key. */
  constructor(private readonly e: Evp, algo: string, key: Uint8Array, readonly blockSize: number) {
    const cipher = e.ciphers[algo]();
    this.ctx = { enc: e.ctxNew(), dec: e.ctxNew() };
    live.register(this, this.ctx, this);
    if (!this.ctx.enc || !this.ctx.dec) throw new Error('EVP_CIPHER_CTX_new failed');
    if (e.encInit(this.ctx.enc, cipher, null, key, null) !== 1 || e.decInit(this.ctx.dec, cipher, null, key, null) !== 1) {
      throw new Error(`EVP init of ${algo} failed`);
    }
    e.setPadding(this.ctx.enc, 0);
    e.setPadding(this.ctx.dec, 0);
    if (algo.startsWith('aes-')) this.multi = AesMultiCbc.create(key);
  }

  /** A context for `algo` (node:crypto's name), or undefined where this path is not available. */
  static create(algo: string, key: Uint8Array, blockSize: number): EvpCbc | undefined {
    const e = bind();
    if (!e || !(algo in e.ciphers) || !selfTest(e)) return undefined;
    try {
      return new EvpCbc(e, algo, key, blockSize);
    } catch {
      return undefined;
    }
  }

  destroy(): void {
    live.unregister(this);
    freeCtx(this.ctx);
    this.last.fill(0);
    this.multi?.destroy();
  }

  /** The contexts, or an error after destroy() (a freed context must never reach OpenSSL). */
  private live(): { enc: unknown; dec: unknown } {
    if (!this.ctx.enc || !this.ctx.dec) throw new Error('cipher used after it was destroyed');
    return this.ctx;
  }

  private update(enc: boolean, out: Uint8Array, input: Uint8Array): void {
    this.live();
    const r = enc ? this.e.encUpdate(this.ctx.enc, out, this.outLen, input, input.length) : this.e.decUpdate(this.ctx.dec, out, this.outLen, input, input.length);
    if (r !== 1 || this.outLen[0] !== input.length) throw new Error('EVP cipher update failed');
  }

  /**
   * CBC-encrypt `count` extents of src into dst, extent e with IV ivs[16e..] (packed). As the
   * node:crypto path: one context, the first block of each extent after the first corrected by
   * Clast ^ IV so the chain restarts at the extent's IV; in place in dst (src copied first).
   */
  encryptExtents(src: Uint8Array, dst: Uint8Array, extentSize: number, ivs: Uint8Array, count: number): void {
    const bs = this.blockSize;
    this.live();
    // Several extents: their chains are independent, so encrypt them side by side.
    if (this.multi && count > 1 && AesMultiCbc.fits(extentSize, count)) return this.multi.encryptExtents(src, dst, extentSize, ivs, count);
    const d = u8(dst);
    if (src.buffer !== dst.buffer || src.byteOffset !== dst.byteOffset) {
      Buffer.from(src.buffer, src.byteOffset, count * extentSize).copy(d);
    }
    if (this.e.encInit(this.ctx.enc, null, null, null, ivs.subarray(0, 16)) !== 1) throw new Error('EVP IV reset failed');
    for (let e = 0; e < count; e++) {
      const o = e * extentSize;
      if (e > 0) for (let j = 0, v = 16 * e; j < bs; j++) d[o + j] ^= d[o - bs + j] ^ ivs[v + j];
      const x = d.subarray(o, o + extentSize);
      this.update(true, x, x);
    }
  }

  /**
   * CBC-decrypt `count` extents in one call (no chaining is needed to decrypt), then correct the
   * first block of each extent after the first: it came out xored with the previous extent's
   * last ciphertext block (saved beforehand: dst may be src) instead of its own IV.
   */
  decryptExtents(src: Uint8Array, dst: Uint8Array, extentSize: number, ivs: Uint8Array, count: number): void {
    // EVP lengths are ints: long runs go in pieces (each restarts at its own first IV).
    const most = Math.max(1, Math.floor(MAX_RUN / extentSize));
    if (count > most) {
      for (let e = 0; e < count; e += most) {
        const n = Math.min(most, count - e), o = e * extentSize;
        this.decryptExtents(src.subarray(o, o + n * extentSize), dst.subarray(o, o + n * extentSize), extentSize, ivs.subarray(16 * e), n);
      }
      return;
    }
    const bs = this.blockSize;
    this.live();
    if (count === 1) {
      // One extent (every 4 KiB READ): no chain to correct, so none of the views below, which
      // made most of the garbage of a random 4 KiB read.
      if (this.e.decInit(this.ctx.dec, null, null, null, ivs) !== 1) throw new Error('EVP IV reset failed');
      this.update(false, dst.length === extentSize ? dst : dst.subarray(0, extentSize), src.length === extentSize ? src : src.subarray(0, extentSize));
      return;
    }
    const s = u8(src), d = u8(dst);
    if (this.last.length < count * bs) this.last = new Uint8Array(count * bs);
    // Word loops where everything is 4-byte aligned (the usual case): a quarter of the steps.
    const w = ((s.byteOffset | d.byteOffset | ivs.byteOffset | extentSize) & 3) === 0 ? 4 : 1;
    const view = (b: Uint8Array, n: number) => (w === 4 ? new Int32Array(b.buffer, b.byteOffset, n >> 2) : b);
    const sv = view(s, count * extentSize), dv = view(d, count * extentSize), iv = view(ivs, 16 * count), last = view(this.last, count * bs);
    const es = extentSize / w, n = bs / w, v16 = 16 / w;
    // Each extent's fix: the previous extent's last ciphertext block xor its own IV, taken before
    // the decryption (dst may be src). Indexed loops: a subarray() per extent would allocate a view each.
    for (let e = 1; e < count; e++) for (let j = 0, o = e * es - n, l = (e - 1) * n, v = e * v16; j < n; j++) last[l + j] = sv[o + j] ^ iv[v + j];
    if (this.e.decInit(this.ctx.dec, null, null, null, ivs.subarray(0, 16)) !== 1) throw new Error('EVP IV reset failed');
    this.update(false, d.subarray(0, count * extentSize), s.subarray(0, count * extentSize));
    for (let e = 1; e < count; e++) for (let j = 0, o = e * es, l = (e - 1) * n; j < n; j++) dv[o + j] ^= last[l + j];
  }
}

/** Once per process: the EVP path must agree with node:crypto on every cipher it serves. */
function selfTest(e: Evp): boolean {
  if (verified !== undefined) return verified;
  verified = false;
  try {
    const cases: [string, number, number][] = [['aes-128-cbc', 16, 16], ['aes-192-cbc', 24, 16], ['aes-256-cbc', 32, 16], ['des-ede3-cbc', 24, 8]];
    for (const [algo, keyLen, bs] of cases) {
      const key = randomBytes(keyLen), ivs = randomBytes(48), data = randomBytes(3 * 64);
      const c = new EvpCbc(e, algo, key, bs);
      const ct = Buffer.alloc(data.length), pt = Buffer.alloc(data.length);
      c.encryptExtents(data, ct, 64, ivs, 3);
      c.decryptExtents(ct, pt, 64, ivs, 3);
      c.destroy();
      for (let x = 0; x < 3; x++) {
        const iv = ivs.subarray(16 * x, 16 * x + bs);
        const want = createCipheriv(algo, key, iv).setAutoPadding(false).update(data.subarray(64 * x, 64 * x + 64));
        if (!want.equals(ct.subarray(64 * x, 64 * x + 64))) return false;
        const back = createDecipheriv(algo, key, iv).setAutoPadding(false).update(want);
        if (!back.equals(pt.subarray(64 * x, 64 * x + 64))) return false;
      }
    }
    verified = true;
  } catch {
    verified = false;
  }
  return verified;
}

/** Whether the EVP path serves this process (for diagnostics, bench and tests). */
export function evpAvailable(): boolean {
  const e = bind();
  return !!e && selfTest(e);
}
