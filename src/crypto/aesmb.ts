/**
 * Multi-buffer AES-CBC encryption of extents: OpenSSL's `aesni_multi_cbc_encrypt` (the AES-NI
 * code behind its TLS multi-block ciphers, exported by the Node binary with the rest of its
 * OpenSSL) runs 8 independent CBC chains at once (4 without AVX).
 *
 * Why: CBC encryption is serial inside a chain, so one chain waits out the AES instruction's
 * latency on every block (~1.7 GB/s here, what `openssl speed -evp aes-128-cbc` measures);
 * every eCryptfs extent is a chain of its own (its own IV), so 8 extents interleaved keep the
 * AES unit busy: ~4x the throughput on one core, same bytes.
 *
 * These are not public OpenSSL API: used only where the symbols are there (Node built with its
 * bundled OpenSSL on x86-64; a Node linked to a system libcrypto does not export them), the CPU
 * has AES-NI (the code would fault without), and the result equals node:crypto's on a self-test
 * once per process; otherwise the EVP path (evp.ts) serves as before. ECRYPTFS_AES_MB=0 turns
 * this off (ECRYPTFS_FFI_CRYPTO=0 too, with every direct OpenSSL call).
 */
import { createCipheriv, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { bindNodeOpenssl, loadKoffi } from './openssl.js';

type Fn = (...args: unknown[]) => unknown;

interface Mb {
  setKey: Fn;
  encrypt: Fn;
  address: (b: Uint8Array) => bigint;
}

/** Lanes per call: `num` = 2 asks for 8 (AVX: one group of 8; without AVX, two groups of 4). */
const LANES = 8;
/** Bytes of one lane's descriptor: { const u8 *inp; u8 *out; int blocks; (pad) u64 iv[2]; }. */
const DESC = 40;
/** AES_KEY: 60 round-key words, then the round count at byte 240. */
const KEY_BYTES = 244;
/**
 * Smallest run handed over by address: V8 keeps typed arrays of up to 64 bytes on its heap,
 * where a garbage collection may move them; larger ones live outside it and never move.
 */
const MIN_BYTES = 256;
/** Blocks per lane is a C int. */
const MAX_BLOCKS = 0x7fffffff;

let mb: Mb | null | undefined;
/** A schedule dropped without destroy() is wiped when collected, as EVP_CIPHER_CTX_free cleanses EVP's. */
const wipe = new FinalizationRegistry<Buffer>((ks) => ks.fill(0));
let verified: boolean | undefined;

function cpuHasAesni(): boolean {
  if (process.platform !== 'linux' || process.arch !== 'x64') return false;
  try {
    const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'latin1'));
    return !!flags && flags[1].split(/\s+/).includes('aes');
  } catch {
    return false;
  }
}

function bind(): Mb | null {
  if (mb !== undefined) return mb;
  mb = null;
  if (process.env.ECRYPTFS_AES_MB === '0' || !cpuHasAesni()) return mb;
  const k = loadKoffi();
  if (!k) return mb;
  mb = bindNodeOpenssl<Fn, Mb>((func) => ({
    setKey: func('int aesni_set_encrypt_key(const uint8_t *, int, void *)'),
    encrypt: func('void aesni_multi_cbc_encrypt(void *, const void *, int)'),
    address: (b) => k.address(b),
  }));
  return mb;
}

/** One AES key's schedule for multi-buffer CBC encryption. */
export class AesMultiCbc {
  private readonly ks = Buffer.alloc(KEY_BYTES + 12);
  /** The descriptors of one call, reused (its own memory: it is passed by address). */
  private readonly desc = Buffer.alloc(LANES * DESC);
  private readonly words = new Uint32Array(this.desc.buffer, this.desc.byteOffset, (LANES * DESC) >> 2);
  private live = true;

  /** Use AesMultiCbc.create (it checks availability). */
  constructor(private readonly m: Mb, key: Uint8Array) {
    if (m.setKey(key, key.length * 8, this.ks) !== 0) throw new Error('aesni_set_encrypt_key refused the key');
    wipe.register(this, this.ks, this);
  }

  /** A schedule for `key` (16, 24 or 32 bytes), or undefined where this path is not available. */
  static create(key: Uint8Array): AesMultiCbc | undefined {
    const m = bind();
    if (!m || ![16, 24, 32].includes(key.length) || !selfTest(m)) return undefined;
    try {
      return new AesMultiCbc(m, key);
    } catch {
      return undefined;
    }
  }

  /** Whether a run of `count` extents of `extentSize` bytes may go this way (else: EVP). */
  static fits(extentSize: number, count: number): boolean {
    return extentSize % 16 === 0 && extentSize / 16 <= MAX_BLOCKS && count * extentSize >= MIN_BYTES;
  }

  destroy(): void {
    wipe.unregister(this);
    this.live = false;
    this.ks.fill(0);
    this.desc.fill(0);
  }

  /**
   * CBC-encrypt `count` extents of src into dst (the same buffer, or not overlapping), extent e
   * from IV ivs[16e..16e+16), 8 extents per call. Checks every bound itself: the native code
   * gets raw addresses.
   */
  encryptExtents(src: Uint8Array, dst: Uint8Array, extentSize: number, ivs: Uint8Array, count: number): void {
    if (!this.live) throw new Error('cipher used after it was destroyed');
    const need = count * extentSize;
    if (!AesMultiCbc.fits(extentSize, count) || src.length < need || dst.length < need || ivs.length < 16 * count) {
      throw new RangeError(`bad multi-buffer run: ${count} extents of ${extentSize} bytes`);
    }
    const s = Number(this.m.address(src)), d = Number(this.m.address(dst));
    const w = this.words, desc = this.desc, blocks = extentSize / 16;
    for (let g = 0; g < count; g += LANES) {
      for (let l = 0; l < LANES; l++) {
        const e = g + l, o = l * (DESC >> 2);
        if (e >= count) {
          w[o + 4] = 0; // an idle lane: its pointers are not used
          continue;
        }
        const si = s + e * extentSize, di = d + e * extentSize;
        w[o] = si >>> 0; w[o + 1] = Math.floor(si / 0x100000000);
        w[o + 2] = di >>> 0; w[o + 3] = Math.floor(di / 0x100000000);
        w[o + 4] = blocks;
        for (let j = 0, v = 16 * e, at = l * DESC + 24; j < 16; j++) desc[at + j] = ivs[v + j];
      }
      this.m.encrypt(desc, this.ks, 2);
    }
  }
}

/** Once per process: every key size, in place and not, more extents than lanes, against node:crypto. */
function selfTest(m: Mb): boolean {
  if (verified !== undefined) return verified;
  verified = false;
  try {
    for (const keyLen of [16, 24, 32]) {
      const key = randomBytes(keyLen), es = 64, n = LANES + 3;
      const data = randomBytes(n * es), ivs = randomBytes(16 * n);
      const c = new AesMultiCbc(m, key);
      const out = Buffer.alloc(data.length), inPlace = Buffer.from(data);
      c.encryptExtents(data, out, es, ivs, n);
      c.encryptExtents(inPlace, inPlace, es, ivs, n);
      c.destroy();
      if (!out.equals(inPlace)) return false;
      for (let e = 0; e < n; e++) {
        const want = createCipheriv(`aes-${keyLen * 8}-cbc`, key, ivs.subarray(16 * e, 16 * e + 16)).setAutoPadding(false).update(data.subarray(e * es, (e + 1) * es));
        if (!want.equals(out.subarray(e * es, (e + 1) * es))) return false;
      }
    }
    verified = true;
  } catch {
    verified = false;
  }
  return verified;
}

/** Whether multi-buffer AES-CBC encryption serves this process (for diagnostics, bench and tests). */
export function aesMultiAvailable(): boolean {
  const m = bind();
  return !!m && selfTest(m);
}
