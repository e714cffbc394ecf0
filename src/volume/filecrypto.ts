/**
 * A file's extent crypto with the crypto pool's threads (src/crypto/pool.ts) for large batches:
 * the format layer's ContentCipher does the work on the calling thread; this spreads a batch
 * over the workers, which share the file key and derive their IVs themselves.
 */
import { cryptoPool, isShared, ScratchPool, sharedBuffer, type JobResult } from '../crypto/pool.js';
import type { BlockCipher, CipherName } from '../crypto/types.js';
import { ContentCipher } from '../format/contentenc.js';

/**
 * Batches smaller than this stay on the calling thread: a worker round trip costs ~20-30 us of
 * CPU and 50-100 us of latency; half of 128 extents (256 KiB) takes ~190 us to encrypt one
 * extent at a time (3DES, or AES without the multi-buffer path), ~30 us 8 at a time (aesmb.ts).
 */
const PARALLEL_MIN_EXTENTS = Number(process.env.ECRYPTFS_PARALLEL_MIN ?? 128);

/** dst.set(src) as a memcpy (TypedArray.set is several times slower, more so on shared memory). */
function copyBytes(src: Uint8Array, dst: Uint8Array): void {
  Buffer.from(src.buffer, src.byteOffset, src.length).copy(dst);
}

/**
 * The results of every job, once all are done (the workers write into memory the caller owns, so
 * none may be left running); throws `failure` (the caller's own share's), else the first job's error.
 */
async function settle(jobs: Promise<JobResult>[], failure: unknown): Promise<JobResult[]> {
  const results = await Promise.allSettled(jobs);
  for (const r of results) if (r.status === 'rejected') failure ??= r.reason;
  if (failure !== undefined) throw failure;
  return results.map((r) => (r as PromiseFulfilledResult<JobResult>).value);
}

/**
 * Shared memory for the workers' share of a batch whose buffers are not shared, reused by every
 * file of the process. One per file before (kept until the file closed): a worker thread keeps
 * every SharedArrayBuffer it was sent until its own garbage collection, which rarely runs, so
 * reading many files grew the process (the library reading 2 MiB files two at a time: 76 ->
 * 155-194 MiB over 600 files).
 */
const spares = new ScratchPool(1 << 20, 4, sharedBuffer);

export class FileCrypto {
  readonly content: ContentCipher;
  /** Whether jobs went to the crypto pool (whose workers then hold this key until told to forget). */
  private pooled = false;
  /** Copy of the FEK for worker threads; zeroed by destroy(). */
  private readonly key: Buffer;

  constructor(name: CipherName, fek: Uint8Array, extentSize?: number) {
    this.content = new ContentCipher(name, fek, extentSize);
    // Its own memory, not a slice of Node's shared pool: jobs send it to workers by copy.
    this.key = Buffer.alloc(fek.length);
    this.key.set(fek);
  }

  get cipher(): BlockCipher {
    return this.content.cipher;
  }

  get extentSize(): number {
    return this.content.extentSize;
  }

  destroy(): void {
    this.key.fill(0);
    this.content.destroy();
    if (this.pooled) cryptoPool().forget();
  }

  /** Decrypt on the calling thread (ContentCipher.decrypt). */
  decrypt(src: Uint8Array, dst: Uint8Array, first: number, count: number): void {
    this.content.decrypt(src, dst, first, count);
  }

  /** Encrypt on the calling thread (ContentCipher.encrypt). */
  encrypt(src: Uint8Array, dst: Uint8Array, first: number, count: number): void {
    this.content.encrypt(src, dst, first, count);
  }

  /**
   * Encrypt in place, spreading large batches over the crypto pool's threads (CBC encryption
   * is serial per extent, so one core is the limit otherwise). A buffer in shared memory
   * (sharedBuffer()) is worked on where it is; any other is copied in part to shared memory and back.
   * `meanwhile(n)`, when given, runs once the first n extents are done and the pool's threads are
   * still at the rest (a writer stores those n extents in that time); it is not called otherwise.
   */
  encryptInPlace(buf: Uint8Array, first: number, count: number, meanwhile?: (done: number) => Promise<void>): Promise<void> {
    return this.spread('encrypt', buf, buf, first, count, meanwhile);
  }

  /**
   * encryptInPlace from `src` into `dst` (not overlapping, or the same buffer): the extents come
   * out in dst, and `meanwhile(n)` may store dst's first n extents.
   */
  encryptInto(src: Uint8Array, dst: Uint8Array, first: number, count: number, meanwhile?: (done: number) => Promise<void>): Promise<void> {
    return this.spread('encrypt', src, dst, first, count, meanwhile);
  }

  /** decryptInPlace is encryptInPlace's inverse, with the same use of the pool. */
  decryptInPlace(buf: Uint8Array, first: number, count: number): Promise<void> {
    return this.spread('decrypt', buf, buf, first, count);
  }

  /**
   * Decrypt extents from `src` into `dst` with the pool's help. When src is in shared memory
   * the workers decrypt their share there in place (so src is clobbered past the first share)
   * and it is copied to dst: give src a scratch buffer the lower file was just read into.
   */
  decryptFrom(src: Uint8Array, dst: Uint8Array, first: number, count: number): Promise<void> {
    return this.spread('decrypt', src, dst, first, count);
  }

  /** Whether a batch of `count` extents is large enough for the pool (it then decides: CryptoPool.pays). */
  large(count: number): boolean {
    return count >= PARALLEL_MIN_EXTENTS && cryptoPool().size > 0;
  }

  /**
   * Read `count` extents of the lower file (extent `first` at offset `io.position` on `io.fd`) and
   * decrypt them into dst, this thread and the pool's together where that pays: each worker reads
   * and decrypts its share into shared memory while this thread reads its own with
   * `readLocal(dst, n)` (the first n extents, returning the bytes read) and decrypts it; then the
   * workers' shares are copied to dst. Resolves to the lower bytes present (count * extentSize
   * unless the lower file ends early, and then dst holds no usable data). For large() batches.
   */
  async readAndDecrypt(
    dst: Uint8Array, first: number, count: number, io: { fd: number; position: number },
    readLocal: (dst: Uint8Array, count: number) => Promise<number>,
  ): Promise<number> {
    const pool = cryptoPool();
    const c = this.content;
    const es = this.extentSize;
    const t0 = performance.now();
    if (!pool.pays('read')) {
      const n = await readLocal(dst, count);
      if (n === count * es) c.decrypt(dst, dst, first, count);
      pool.took('read', false, performance.now() - t0, count);
      return n;
    }
    const { parts, per } = this.split(count);
    const restBytes = (count - per) * es;
    const borrowed = spares.take(restBytes);
    const jobs = this.runShares('decrypt', first, count, per, borrowed, io);
    let failure: unknown;
    let present = 0;
    try {
      present = await readLocal(dst, per);
      if (present === per * es) c.decrypt(dst, dst, first, per);
    } catch (e) {
      failure = e;
    }
    const results = await settle(jobs, failure);
    for (let j = 0; j < parts - 1 && present === (j + 1) * per * es; j++) present += results[j].read ?? 0;
    if (present >= count * es) copyBytes(borrowed.subarray(0, restBytes), dst.subarray(per * es, count * es));
    spares.give(borrowed, restBytes);
    pool.took('read', true, performance.now() - t0, count);
    return Math.min(present, count * es);
  }

  /**
   * One pool job for each `per` extents after this thread's first `per`, on shared memory `buf`
   * (which holds those extents from its start); with `io` each job reads its share of the lower file first.
   */
  private runShares(
    op: 'encrypt' | 'decrypt', first: number, count: number, per: number, buf: Uint8Array, io?: { fd: number; position: number },
  ): Promise<JobResult>[] {
    const pool = cryptoPool();
    const c = this.content;
    const es = this.extentSize;
    const jobs: Promise<JobResult>[] = [];
    this.pooled = true;
    for (let e = per; e < count; e += per) {
      jobs.push(pool.run({
        op, cipher: c.cipher.name, key: this.key, root: c.root, extentSize: es, first: first + e, count: Math.min(per, count - e),
        buf: buf.buffer as SharedArrayBuffer, byteOffset: buf.byteOffset + (e - per) * es,
        ...(io ? { io: { fd: io.fd, position: io.position + e * es } } : {}),
      }));
    }
    return jobs;
  }

  /** How a batch is cut: this thread takes the first `per` extents, each worker the next `per`. */
  private split(count: number): { parts: number; per: number } {
    const parts = Math.min(cryptoPool().size + 1, Math.floor(count / (PARALLEL_MIN_EXTENTS >> 1)) || 1);
    const per = Math.ceil(count / parts);
    return { parts: Math.ceil(count / per), per };
  }


  private async spread(
    op: 'encrypt' | 'decrypt', src: Uint8Array, dst: Uint8Array, first: number, count: number,
    meanwhile?: (done: number) => Promise<void>,
  ): Promise<void> {
    const pool = cryptoPool();
    const c = this.content;
    const local = op === 'encrypt' ? c.encrypt.bind(c) : c.decrypt.bind(c);
    const t0 = performance.now();
    if (!this.large(count) || !pool.pays(op)) {
      local(src, dst, first, count);
      if (this.large(count)) pool.took(op, false, performance.now() - t0, count);
      return;
    }
    const es = this.extentSize;
    const { per } = this.split(count);
    const rest = src.subarray(per * es, count * es);
    const out = dst.subarray(per * es, count * es);
    // Where the workers do their share: in src's shared memory when it may be overwritten (in
    // place, or decryptFrom's scratch; never a caller's plaintext), else copied to dst's place
    // when that is shared, else to borrowed shared memory (copied to dst afterwards).
    let shared: Uint8Array;
    let borrowed: Buffer | undefined;
    if (isShared(rest) && (op === 'decrypt' || (src.buffer === dst.buffer && src.byteOffset === dst.byteOffset))) shared = rest;
    else if (isShared(out)) {
      shared = out;
      copyBytes(rest, out);
    } else {
      borrowed = spares.take(rest.length);
      shared = borrowed.subarray(0, rest.length);
      copyBytes(rest, shared);
    }
    const jobs = this.runShares(op, first, count, per, shared);
    let failure: unknown;
    // The caller's store of its share is not the batch's cost: alone it would store all later.
    let storing = 0;
    try {
      local(src, dst, first, per);
      if (meanwhile) {
        const m0 = performance.now();
        await meanwhile(per);
        storing = performance.now() - m0;
      }
    } catch (e) {
      failure = e;
    }
    await settle(jobs, failure);
    if (shared.buffer !== out.buffer || shared.byteOffset !== out.byteOffset) copyBytes(shared, out);
    // Decrypted bytes are wiped; encrypted ones (the workers encrypted in place) need not be.
    if (borrowed) spares.give(borrowed, op === 'decrypt' ? rest.length : 0);
    pool.took(op, true, performance.now() - t0 - storing, count);
  }
}
