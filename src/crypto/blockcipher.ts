/**
 * Keyed block ciphers for eCryptfs: OpenSSL (node:crypto) where it has the cipher, pure
 * TypeScript where it does not (Twofish, CAST-256) or where OpenSSL 3 hides it in the legacy
 * provider (Blowfish, CAST5) and Node was started without --openssl-legacy-provider.
 *
 * CBC is batched: eCryptfs encrypts each 4096-byte extent with its own IV, and a cipher object
 * per extent costs more than the AES work on it, so one OpenSSL context serves a whole batch and
 * the first block of each extent is corrected for the IV change (see the methods).
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto';
import { ivCount, packIvs, type BlockCipher, type CipherName, type ExtentIvs } from './types.js';
import type { WordCipher } from './wordcipher.js';
import { Blowfish } from './blowfish.js';
import { Cast5 } from './cast5.js';
import { Cast6 } from './cast6.js';
import { Twofish } from './twofish.js';
import { EvpCbc } from './evp.js';
import { checkExtents, jsCbcDecryptExtents, jsCbcEncryptExtents, jsEcb } from './jsmodes.js';

export type CipherBackend = 'openssl' | 'js';

/** Bytes per Decipher.update() call when decrypting (measured best: 64 KiB, see cbcDecryptExtents). */
const DECRYPT_SLICE = 64 * 1024;

const BLOCK: Record<CipherName, 8 | 16> = { aes: 16, blowfish: 8, des3_ede: 8, twofish: 16, cast6: 16, cast5: 8 };

/** Key lengths (bytes) each cipher accepts. */
const KEY_OK: Record<CipherName, (n: number) => boolean> = {
  aes: (n) => n === 16 || n === 24 || n === 32,
  des3_ede: (n) => n === 24,
  blowfish: (n) => n >= 4 && n <= 56,
  cast5: (n) => n >= 5 && n <= 16,
  twofish: (n) => n === 16 || n === 24 || n === 32,
  cast6: (n) => n >= 16 && n <= 32 && n % 4 === 0,
};

/**
 * ECB encryption with a cipher that is kept and used again (a volume's name or key-wrapping
 * cipher): CBC restarted at a zero IV every block, which is ECB, through the cipher's reusable
 * extent context. ecbEncrypt makes a new OpenSSL context per call (~2.3 against ~1.4 us for a
 * 16-byte key here); a cipher used once should keep using ecbEncrypt (no context left behind).
 */
export function ecbEncryptKept(c: BlockCipher, data: Uint8Array): Buffer {
  const bs = c.blockSize;
  if (data.length % bs !== 0) throw new RangeError(`data length ${data.length} is not a multiple of the ${bs}-byte cipher block`);
  const out = Buffer.alloc(data.length);
  if (data.length > 0) c.cbcEncryptExtents(data, out, bs, new Uint8Array((data.length / bs) * 16));
  return out;
}

export function blockSizeOf(name: CipherName): 8 | 16 {
  return BLOCK[name];
}

let legacy: boolean | undefined;
/** Whether OpenSSL serves bf-* and cast5-* (OpenSSL 3 has them only in the legacy provider). Cached. */
export function hasLegacyProvider(): boolean {
  if (legacy === undefined) {
    try {
      createCipheriv('bf-ecb', Buffer.alloc(16), null);
      createCipheriv('cast5-ecb', Buffer.alloc(16), null);
      legacy = true;
    } catch {
      legacy = false;
    }
  }
  return legacy;
}

/** Which implementation createBlockCipher picks for this cipher in this process. */
export function cipherBackend(name: CipherName): CipherBackend {
  switch (name) {
    case 'aes':
    case 'des3_ede':
      return 'openssl';
    case 'blowfish':
    case 'cast5':
      return hasLegacyProvider() ? 'openssl' : 'js';
    default:
      return 'js';
  }
}

function opensslName(name: CipherName, keyBytes: number, mode: 'ecb' | 'cbc'): string {
  switch (name) {
    case 'aes': return `aes-${keyBytes * 8}-${mode}`;
    case 'des3_ede': return `des-ede3-${mode}`;
    case 'blowfish': return `bf-${mode}`;
    case 'cast5': return `cast5-${mode}`;
    default: throw new Error(`OpenSSL has no ${name} cipher`);
  }
}

export interface CreateOptions {
  /** Force an implementation (tests compare them); default: cipherBackend(name). */
  backend?: CipherBackend;
  /**
   * Extent CBC of AES and 3DES straight through OpenSSL's EVP API (src/crypto/evp.ts) when it is
   * available; false keeps node:crypto's Cipher objects (tests compare the two). Default true.
   */
  evp?: boolean;
}

/**
 * A keyed cipher. Throws RangeError for a key length the cipher does not take, and Error when
 * `backend: 'openssl'` is forced for a cipher this OpenSSL does not provide.
 */
export function createBlockCipher(name: CipherName, key: Uint8Array, options: CreateOptions = {}): BlockCipher {
  const check = KEY_OK[name];
  if (!check) throw new RangeError(`unknown cipher ${String(name)}`);
  if (!check(key.length)) throw new RangeError(`${name} does not take a ${key.length}-byte key`);
  const backend = options.backend ?? cipherBackend(name);
  if (backend === 'openssl') {
    if (name === 'twofish' || name === 'cast6') throw new Error(`OpenSSL has no ${name} cipher`);
    if ((name === 'blowfish' || name === 'cast5') && !hasLegacyProvider()) {
      throw new Error(`${name} needs OpenSSL's legacy provider: run node with --openssl-legacy-provider`);
    }
    return new OpenSslCipher(name, key, options.evp ?? true);
  }
  return new JsCipher(name, key);
}

/**
 * dst.set(b, at), but through Buffer.copy (a memcpy): TypedArray.set is 3x slower here, and
 * these copies move every byte that goes through OpenSSL.
 */
function copyInto(b: Buffer, dst: Uint8Array, at: number): void {
  b.copy(dst, at);
}

/** Whether two views cover exactly the same bytes. */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.buffer === b.buffer && a.byteOffset === b.byteOffset;
}

function wordCipher(name: CipherName, key: Uint8Array): WordCipher {
  switch (name) {
    case 'blowfish': return new Blowfish(key);
    case 'cast5': return new Cast5(key);
    case 'cast6': return new Cast6(key);
    case 'twofish': return new Twofish(key);
    default: throw new Error(`no pure TypeScript ${name}; it is served by OpenSSL`);
  }
}

class JsCipher implements BlockCipher {
  readonly backend = 'js' as const;
  readonly blockSize: 8 | 16;
  readonly keyBytes: number;
  private readonly c: WordCipher;

  constructor(readonly name: CipherName, key: Uint8Array) {
    this.blockSize = BLOCK[name];
    this.keyBytes = key.length;
    this.c = wordCipher(name, key);
  }

  ecbEncrypt(data: Uint8Array): Buffer { return jsEcb(this.c, data, true); }
  ecbDecrypt(data: Uint8Array): Buffer { return jsEcb(this.c, data, false); }
  cbcEncryptExtents(src: Uint8Array, dst: Uint8Array, extentSize: number, ivs: ExtentIvs): void {
    jsCbcEncryptExtents(this.c, src, dst, extentSize, ivs);
  }
  cbcDecryptExtents(src: Uint8Array, dst: Uint8Array, extentSize: number, ivs: ExtentIvs): void {
    jsCbcDecryptExtents(this.c, src, dst, extentSize, ivs);
  }
}

class OpenSslCipher implements BlockCipher {
  readonly backend = 'openssl' as const;
  readonly blockSize: 8 | 16;
  readonly keyBytes: number;
  private readonly key: KeyObject;
  private readonly ecb: string;
  private readonly cbc: string;
  /** Scratch for one patched extent (encrypt), grown on demand. */
  private scratch = Buffer.alloc(0);
  /**
   * The direct EVP path for extent CBC, where available (AES, 3DES): made on the first extent
   * call, not here. Most ciphers only ever do ECB (a name, a wrapped key) and are dropped
   * unfreed; their OpenSSL contexts would stay malloc'd until a GC ran their finalizers
   * (measured: ~24 MB of contexts at 20,000 creates in the mount daemon).
   */
  private evpCtx: EvpCbc | undefined;
  private evpTried: boolean;

  constructor(readonly name: CipherName, key: Uint8Array, useEvp: boolean) {
    this.blockSize = BLOCK[name];
    this.keyBytes = key.length;
    this.key = createSecretKey(Buffer.from(key));
    this.ecb = opensslName(name, key.length, 'ecb');
    this.cbc = opensslName(name, key.length, 'cbc');
    this.evpTried = !(useEvp && (name === 'aes' || name === 'des3_ede'));
  }

  private get evp(): EvpCbc | undefined {
    if (!this.evpTried) {
      this.evpTried = true;
      const k = this.key.export();
      try {
        this.evpCtx = EvpCbc.create(this.cbc, k, this.blockSize);
      } finally {
        k.fill(0);
      }
    }
    return this.evpCtx;
  }

  destroy(): void {
    this.evpTried = true;
    this.evpCtx?.destroy();
  }

  /** Whether extent CBC goes through the direct EVP path. */
  get direct(): boolean {
    return this.evp !== undefined;
  }

  private ecbRun(data: Uint8Array, encrypt: boolean): Buffer {
    if (data.length % this.blockSize !== 0) {
      throw new RangeError(`data length ${data.length} is not a multiple of the ${this.blockSize}-byte cipher block`);
    }
    const c = encrypt ? createCipheriv(this.ecb, this.key, null) : createDecipheriv(this.ecb, this.key, null);
    c.setAutoPadding(false);
    const out = c.update(data);
    c.final();
    return out;
  }

  ecbEncrypt(data: Uint8Array): Buffer { return this.ecbRun(data, true); }
  ecbDecrypt(data: Uint8Array): Buffer { return this.ecbRun(data, false); }

  /**
   * One CBC context for all extents. Before extent i>0 the context chains from the previous
   * ciphertext block C, so feeding P0 ^ C ^ IV_i as the first plaintext block yields
   * E(P0 ^ IV_i), exactly what a fresh context with IV_i would produce. CBC encryption is serial,
   * so this costs one update() per extent (Node has no update-into and no multi-buffer CBC).
   */
  cbcEncryptExtents(src: Uint8Array, dst: Uint8Array, extentSize: number, ivs: ExtentIvs): void {
    const bs = this.blockSize;
    checkExtents(src, dst, extentSize, ivs, bs);
    const count = ivCount(ivs);
    if (count === 0) return;
    const iv = packIvs(ivs);
    if (this.evp) return this.evp.encryptExtents(src, dst, extentSize, iv, count);
    const c = createCipheriv(this.cbc, this.key, iv.subarray(0, bs));
    c.setAutoPadding(false);
    copyInto(c.update(src.subarray(0, extentSize)), dst, 0);
    if (count === 1) return;
    // Plain Uint8Array views: their subarray() is cheaper than Buffer's, and this loop runs per extent.
    const d = new Uint8Array(dst.buffer, dst.byteOffset, dst.length);
    const inPlace = sameBytes(src, dst);
    if (!inPlace && this.scratch.length < extentSize) this.scratch = Buffer.alloc(extentSize);
    const scratch = inPlace ? d : new Uint8Array(this.scratch.buffer, this.scratch.byteOffset, extentSize);
    for (let e = 1; e < count; e++) {
      const o = e * extentSize;
      // src is never modified, so the patched extent goes through a scratch copy; in place the
      // plaintext is about to be overwritten anyway, so patch it where it is (saves a copy).
      const s = inPlace ? d.subarray(o, o + extentSize) : scratch;
      if (!inPlace) s.set(src.subarray(o, o + extentSize));
      for (let j = 0, v = 16 * e; j < bs; j++) s[j] ^= d[o - bs + j] ^ iv[v + j];
      copyInto(c.update(s), d, o);
    }
    c.final();
  }

  /**
   * One CBC context over all extents, fed in slices of about DECRYPT_SLICE bytes: each update()
   * allocates its output, and a large allocation costs page faults that a small reused one does
   * not (1 MiB at once runs at ~2/3 the speed). The first block of extent i>0 comes out as
   * D(C0) ^ Clast(i-1) instead of D(C0) ^ IV_i; xor both in to correct it. Clast is read from src
   * before the output is copied over it (dst may be src); across a slice edge it is kept in `prev`.
   */
  cbcDecryptExtents(src: Uint8Array, dst: Uint8Array, extentSize: number, ivs: ExtentIvs): void {
    const bs = this.blockSize;
    checkExtents(src, dst, extentSize, ivs, bs);
    const count = ivCount(ivs);
    if (count === 0) return;
    const iv = packIvs(ivs);
    if (this.evp) return this.evp.decryptExtents(src, dst, extentSize, iv, count);
    const c = createDecipheriv(this.cbc, this.key, iv.subarray(0, bs));
    c.setAutoPadding(false);
    const per = Math.max(1, Math.floor(DECRYPT_SLICE / extentSize));
    const prev = new Uint8Array(bs);
    for (let e0 = 0; e0 < count; e0 += per) {
      const e1 = Math.min(count, e0 + per);
      const off = e0 * extentSize, end = e1 * extentSize;
      const out = c.update(src.subarray(off, end));
      for (let e = e0 === 0 ? 1 : e0; e < e1; e++) {
        const o = e * extentSize, at = o - off, v = 16 * e;
        if (e === e0) for (let j = 0; j < bs; j++) out[at + j] ^= prev[j] ^ iv[v + j];
        else for (let j = 0; j < bs; j++) out[at + j] ^= src[o - bs + j] ^ iv[v + j];
      }
      if (e1 < count) prev.set(src.subarray(end - bs, end));
      copyInto(out, dst, off);
    }
  }
}
