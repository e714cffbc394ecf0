/**
 * A small pool of worker threads for extent crypto, so large reads and writes use more than one
 * core: CBC encryption is serial within an extent and Node's per-call costs cap one thread near
 * 1 GB/s (AES on x86-64 encrypts 8 extents side by side instead, ~8 GB/s: src/crypto/aesmb.ts, so
 * there a hand-off costs about what it saves and CryptoPool.pays keeps such batches local). Jobs work in place on SharedArrayBuffer memory (no copy, no transfer); the worker
 * derives the IVs of its extents itself, so the calling thread does none of that work.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { CipherName } from './types.js';

export interface ExtentJob {
  op: 'encrypt' | 'decrypt';
  cipher: CipherName;
  key: Uint8Array;
  /** Root IV of the file (16 bytes). */
  root: Uint8Array;
  extentSize: number;
  /** Extent index of the first extent in the job. */
  first: number;
  count: number;
  /** The extents, in place: buf[byteOffset, byteOffset + count * extentSize). */
  buf: SharedArrayBuffer;
  byteOffset: number;
  /**
   * A decrypt's share of the lower file, read by the worker first (at `position`, on a descriptor
   * every thread may use): the lower read then runs beside the caller's, not before it.
   * (Writes stay on the caller: a worker writing its share beside it measured no faster.)
   */
  io?: { fd: number; position: number };
}

/** What a job did: the lower bytes it read (a decrypt with io; fewer at the lower file's end). */
export interface JobResult { read?: number }

interface Pending { resolve(r: JobResult): void; reject(e: Error): void }

/** Batches whose costs are kept apart: encryption, decryption, and a lower read with decryption. */
export type BatchKind = 'encrypt' | 'decrypt' | 'read';
/** One batch in EXPLORE goes the way that cost more, to measure it again. */
const EXPLORE = 32;
/** Weight of the newest batch in the running cost (the rest is the history's). */
const WEIGHT = 0.25;

/**
 * The running cost `avg` moved toward a new batch's `x` (the first batch sets it): one batch stalled
 * by the scheduler moves it at most a quarter up.
 */
function runningCost(avg: number, x: number): number {
  return Number.isNaN(avg) ? x : avg + (Math.min(x, 2 * avg) - avg) * WEIGHT;
}

/** Default number of worker threads: one per core beyond the first, at most 3. */
function defaultWorkers(): number {
  const env = process.env.ECRYPTFS_CRYPTO_WORKERS;
  if (env !== undefined && /^\d+$/.test(env)) return Math.min(8, Number(env));
  return Math.max(0, Math.min(3, availableParallelism() - 1));
}

class CryptoPool {
  private workers: Worker[] = [];
  private next = 0;
  private jobId = 1;
  private readonly pending = new Map<number, Pending>();
  private active = 0;
  /** Number of worker threads (extra cores) jobs are spread over; 0: everything on the caller. */
  size = defaultWorkers();
  /** What each kind of batch has cost, on the calling thread alone and spread (see pays()). */
  private costs = new Map<BatchKind, { local: number; spread: number; batches: number }>();

  /**
   * Whether to spread the next large batch of this kind over the workers. It pays only when
   * another core is free: on a busy machine the worker waits for a time slice, the caller for the
   * worker, and the batch takes as long as on the caller alone for more CPU. So the pool keeps
   * the running cost per extent of both ways (took()) and takes the cheaper one, and every
   * EXPLORE-th batch the other one, so that its cost follows the machine's load.
   */
  pays(kind: BatchKind): boolean {
    if (this.size === 0) return false;
    const c = this.cost(kind);
    c.batches++;
    const better = Number.isNaN(c.spread) || (!Number.isNaN(c.local) && c.spread < c.local);
    const spread = Number.isNaN(c.spread) || Number.isNaN(c.local) ? better : c.batches % EXPLORE === 0 ? !better : better;
    if (spread) this.tally.spread++;
    else this.tally.local++;
    return spread;
  }

  /** How many large batches pays() sent to the workers and kept on the caller (for the bench). */
  readonly tally = { spread: 0, local: 0 };

  /** A large batch of this kind took `ms` (on the caller's clock) for `extents`, spread or not. */
  took(kind: BatchKind, spread: boolean, ms: number, extents: number): void {
    // A batch that started a worker thread measured the start (tens of ms), not the batch.
    if (spread && this.starting) {
      this.starting = false;
      return;
    }
    const c = this.cost(kind);
    const x = ms / extents;
    if (spread) c.spread = runningCost(c.spread, x);
    else c.local = runningCost(c.local, x);
  }

  /** Whether a worker thread was started since the last spread batch was measured. */
  private starting = false;

  private cost(kind: BatchKind): { local: number; spread: number; batches: number } {
    let c = this.costs.get(kind);
    if (!c) this.costs.set(kind, (c = { local: NaN, spread: NaN, batches: 0 }));
    return c;
  }

  private worker(): Worker {
    if (this.workers.length < this.size) {
      const w = new Worker(new URL('./pool-worker.js', import.meta.url));
      this.starting = true;
      w.on('message', (m: { id: number; error?: string; code?: string; read?: number }) => {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        this.done();
        if (m.error === undefined) p?.resolve({ read: m.read });
        // The errno code goes along (ENOSPC, EIO from the job's lower I/O), as callers map it.
        else p?.reject(Object.assign(new Error(`crypto worker: ${m.error}`), m.code ? { code: m.code } : {}));
      });
      w.on('error', (e) => this.fail(w, e));
      w.on('exit', (code) => this.fail(w, new Error(`crypto worker exited (code ${code})`)));
      w.unref();
      this.workers.push(w);
    }
    return this.workers[this.next++ % this.workers.length];
  }

  /** A worker died: every pending job fails (they cannot tell whose job it was), the worker goes. */
  private fail(w: Worker, e: Error): void {
    this.workers = this.workers.filter((x) => x !== w);
    for (const p of this.pending.values()) p.reject(e);
    this.active -= this.pending.size;
    this.pending.clear();
  }

  private done(): void {
    if (--this.active === 0) for (const w of this.workers) w.unref();
  }

  /** Run one job on a worker; resolves when its extents in `job.buf` (and its lower I/O) are done. */
  run(job: ExtentJob): Promise<JobResult> {
    const w = this.worker();
    const id = this.jobId++;
    this.active++;
    w.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, job });
    });
  }

  /** Workers drop the cipher (and key) they keep for the last file they served. */
  forget(): void {
    for (const w of this.workers) w.postMessage({ forget: true });
  }

  /** Change the number of workers (bench, tests); extra threads are stopped; pays() starts afresh. */
  resize(n: number): void {
    this.size = n;
    // A new start: the next batch is spread (tests rely on it after choosing a thread count).
    this.costs.clear();
    while (this.workers.length > n) {
      const w = this.workers.pop()!;
      w.removeAllListeners('exit');
      void w.terminate();
    }
  }
}

let pool: CryptoPool | undefined;

export function cryptoPool(): CryptoPool {
  pool ??= new CryptoPool();
  return pool;
}

/**
 * Set how many worker threads extent crypto may use (0: none, all on the calling thread);
 * undefined restores the default (ECRYPTFS_CRYPTO_WORKERS, else one per extra core, at most 3).
 */
export function setCryptoWorkers(n: number | undefined): void {
  cryptoPool().resize(n ?? defaultWorkers());
}

/** Whether `b` lies in shared memory that pool jobs can work on in place. */
export function isShared(b: Uint8Array): b is Uint8Array & { buffer: SharedArrayBuffer } {
  return b.buffer instanceof SharedArrayBuffer;
}

/** A zero-filled Buffer over new shared memory. */
export function sharedBuffer(bytes: number): Buffer {
  return Buffer.from(new SharedArrayBuffer(bytes));
}

/**
 * Scratch buffers of `bytes` reused by a whole process, at most `kept` of them kept between uses
 * (a worker keeps every SharedArrayBuffer it is sent until its rarely-run GC, so one per file made
 * the process grow with the files it touched). A request for more than `bytes` gets a buffer of
 * its own, not kept.
 */
export class ScratchPool {
  private readonly free: Buffer[] = [];
  constructor(
    private readonly bytes: number,
    private readonly kept: number,
    private readonly make: (bytes: number) => Buffer,
  ) {}

  /** A scratch of at least `bytes`, the caller's until give(). */
  take(bytes: number): Buffer {
    if (bytes > this.bytes) return this.make(bytes);
    return this.free.pop() ?? this.make(this.bytes);
  }

  /** Give back a taken scratch, its first `wipe` bytes zeroed first (clear bytes of a file). */
  give(b: Buffer, wipe = 0): void {
    if (wipe > 0) b.fill(0, 0, wipe);
    if (b.length === this.bytes && this.free.length < this.kept) this.free.push(b);
  }
}
