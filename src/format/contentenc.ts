/**
 * File content encryption: per-extent IVs and batched extent crypto (ECRYPTFS-FORMAT §4).
 * root_iv = MD5(FEK); iv_n = MD5(root_iv || decimal(n) zero-padded to 16 bytes).
 */
import { createHash } from 'node:crypto';
import { createBlockCipher } from '../crypto/blockcipher.js';
import { extentIvsInto } from '../crypto/extentiv.js';
import type { BlockCipher, CipherName } from '../crypto/types.js';
import { EXTENT_SIZE } from './offsets.js';

export function rootIv(fek: Uint8Array): Buffer {
  return createHash('md5').update(fek).digest();
}

/** IV of extent `index` written into out[outOff..outOff+16). */
export function extentIvInto(root: Uint8Array, index: number, out: Uint8Array, outOff = 0): void {
  extentIvsInto(root, index, 1, out, outOff);
}

export function extentIv(root: Uint8Array, index: number): Buffer {
  const out = Buffer.alloc(16);
  extentIvInto(root, index, out);
  return out;
}

/**
 * Extent crypto of one file on the calling thread: the FEK's cipher object and its root IV,
 * buffers in, buffers out. (Spreading large batches over worker threads is the volume's:
 * src/volume/filecrypto.ts.)
 */
export class ContentCipher {
  readonly cipher: BlockCipher;
  readonly extentSize: number;
  /** MD5(FEK), the seed of every extent IV (worker threads derive their IVs from it). */
  readonly root: Buffer;
  /** IVs of the current batch: reused, since the batch calls are synchronous (no allocation per call). */
  private ivScratch = Buffer.alloc(0);

  constructor(name: CipherName, fek: Uint8Array, extentSize = EXTENT_SIZE) {
    this.cipher = createBlockCipher(name, fek);
    this.root = rootIv(fek);
    this.extentSize = extentSize;
  }

  destroy(): void {
    this.root.fill(0);
    this.ivScratch.fill(0);
    this.cipher.destroy?.();
  }

  /** IVs of extents first..first+count-1, packed 16 bytes each, in the reused scratch. */
  private packedIvs(first: number, count: number): Buffer {
    if (this.ivScratch.length < 16 * count) this.ivScratch = Buffer.alloc(16 * count);
    const all = this.ivScratch.subarray(0, 16 * count);
    extentIvsInto(this.root, first, count, all);
    return all;
  }

  /** Decrypt `count` whole extents starting at extent index `first` (src may be dst). */
  decrypt(src: Uint8Array, dst: Uint8Array, first: number, count: number): void {
    if (count === 0) return;
    this.cipher.cbcDecryptExtents(src.subarray(0, count * this.extentSize), dst, this.extentSize, this.packedIvs(first, count));
  }

  /** Encrypt `count` whole extents starting at extent index `first` into dst. */
  encrypt(src: Uint8Array, dst: Uint8Array, first: number, count: number): void {
    if (count === 0) return;
    this.cipher.cbcEncryptExtents(src.subarray(0, count * this.extentSize), dst, this.extentSize, this.packedIvs(first, count));
  }
}
