/**
 * A small pool of worker threads for CBC encryption. CBC encryption is serial within an extent,
 * so one core tops out near OpenSSL's single-core speed; large batches are split and half of
 * the extents are encrypted on another core at the same time. Data moves by transfer, not copy.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import type { CipherName } from './types.js';

interface Pending { resolve(b: ArrayBuffer): void; reject(e: Error): void }

class CryptoPool {
  private workers: Worker[] = [];
  private next = 0;
  private jobId = 1;
  private readonly pending = new Map<number, Pending>();
  private active = 0;

  /** Number of extra cores the pool uses (0 on a single-core machine). */
  readonly size = Math.max(0, Math.min(3, availableParallelism() - 1));

  private worker(): Worker {
    if (this.workers.length < this.size) {
      const w = new Worker(new URL('./pool-worker.js', import.meta.url));
      w.on('message', (m: { id: number; data: ArrayBuffer }) => {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        this.done();
        p?.resolve(m.data);
      });
      w.on('error', (e) => {
        for (const p of this.pending.values()) p.reject(e);
        this.pending.clear();
      });
      w.unref();
      this.workers.push(w);
    }
    return this.workers[this.next++ % this.workers.length];
  }

  private done(): void {
    if (--this.active === 0) for (const w of this.workers) w.unref();
  }

  /**
   * Encrypt the extents in `data` (which must own its whole ArrayBuffer: it is transferred and
   * unusable until the promise resolves with the encrypted buffer).
   */
  encrypt(cipher: CipherName, key: Uint8Array, extentSize: number, ivs: Uint8Array, data: ArrayBuffer): Promise<ArrayBuffer> {
    const w = this.worker();
    const id = this.jobId++;
    this.active++;
    w.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      w.postMessage({ id, cipher, key: Uint8Array.from(key), extentSize, ivs, data }, [data]);
    });
  }
}

let pool: CryptoPool | undefined;

export function cryptoPool(): CryptoPool {
  pool ??= new CryptoPool();
  return pool;
}
