/**
 * File content encryption: per-extent IVs and batched extent crypto (ECRYPTFS-FORMAT §4).
 * root_iv = MD5(FEK); iv_n = MD5(root_iv || decimal(n) zero-padded to 16 bytes).
 */
import { createHash } from 'node:crypto';
import { createBlockCipher } from '../crypto/blockcipher.js';
import type { BlockCipher, CipherName } from '../crypto/types.js';
import { EXTENT_SIZE } from './offsets.js';
import { md5Short } from './md5.js';
import { cryptoPool } from '../crypto/pool.js';

/** Batches smaller than this stay on the calling thread (a worker round trip costs ~50 us). */
const PARALLEL_MIN_EXTENTS = Number(process.env.ECRYPTFS_PARALLEL_MIN ?? 64);

export function rootIv(fek: Uint8Array): Buffer {
  return createHash('md5').update(fek).digest();
}

const ivSrc = Buffer.alloc(32);

/** IV of extent `index` written into out[outOff..outOff+16). */
export function extentIvInto(root: Uint8Array, index: number, out: Uint8Array, outOff = 0): void {
  ivSrc.set(root.subarray(0, 16), 0);
  // The kernel prints the index with "%lld" into a zeroed 16-byte field.
  ivSrc.fill(0, 16);
  ivSrc.write(String(index), 16, 'latin1');
  md5Short(ivSrc, out, outOff);
}

export function extentIv(root: Uint8Array, index: number): Buffer {
  const out = Buffer.alloc(16);
  extentIvInto(root, index, out);
  return out;
}

/** Extent crypto of one file: the FEK's cipher object and IV cache. */
export class ContentCipher {
  readonly cipher: BlockCipher;
  readonly extentSize: number;
  private readonly root: Buffer;

  private spare: ArrayBuffer | undefined;
  /** Copy of the FEK for worker threads; zeroed by destroy(). */
  private readonly key: Buffer;

  constructor(name: CipherName, fek: Uint8Array, extentSize = EXTENT_SIZE) {
    this.cipher = createBlockCipher(name, fek);
    this.root = rootIv(fek);
    this.extentSize = extentSize;
    this.key = Buffer.from(fek);
  }

  destroy(): void {
    this.key.fill(0);
    this.root.fill(0);
  }

  ivs(first: number, count: number): Buffer[] {
    const all = Buffer.allocUnsafe(16 * count);
    const out = new Array<Buffer>(count);
    for (let i = 0; i < count; i++) {
      extentIvInto(this.root, first + i, all, 16 * i);
      out[i] = all.subarray(16 * i, 16 * i + 16);
    }
    return out;
  }

  /** Decrypt `count` whole extents starting at extent index `first` (src may be dst). */
  decrypt(src: Uint8Array, dst: Uint8Array, first: number, count: number): void {
    if (count === 0) return;
    this.cipher.cbcDecryptExtents(src.subarray(0, count * this.extentSize), dst, this.extentSize, this.ivs(first, count));
  }

  /**
   * Encrypt in place, using a second core for large batches (CBC encryption is serial per
   * extent, so one core is the limit otherwise).
   */
  async encryptInPlace(buf: Buffer, first: number, count: number): Promise<void> {
    const pool = cryptoPool();
    if (count < PARALLEL_MIN_EXTENTS || pool.size === 0) {
      this.encrypt(buf, buf, first, count);
      return;
    }
    const half = count >> 1;
    const es = this.extentSize;
    const bytes = (count - half) * es;
    // Reuse the buffer the worker sent back last time: fresh memory page-faults slowly.
    const second = this.spare && this.spare.byteLength === bytes ? this.spare : new ArrayBuffer(bytes);
    this.spare = undefined;
    new Uint8Array(second).set(buf.subarray(half * es, count * es));
    const ivs = Buffer.concat(this.ivs(first + half, count - half));
    const job = pool.encrypt(this.cipher.name, this.key, es, ivs, second);
    this.encrypt(buf, buf, first, half);
    const done = await job;
    buf.set(new Uint8Array(done), half * es);
    this.spare = done;
  }

  /** Encrypt `count` whole extents starting at extent index `first` into dst. */
  encrypt(src: Uint8Array, dst: Uint8Array, first: number, count: number): void {
    if (count === 0) return;
    this.cipher.cbcEncryptExtents(src.subarray(0, count * this.extentSize), dst, this.extentSize, this.ivs(first, count));
  }
}
