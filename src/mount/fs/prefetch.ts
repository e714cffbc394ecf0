/**
 * Header prefetch for cold listings. A lookup of a closed regular file reads the clear size from
 * its header: on a cold disk that is one random read per file, made one after the other by the
 * single thread serving requests (gocryptfs derives sizes from the lower size and reads nothing).
 * When READDIR lists regular files whose clear size is not cached, their names go to one worker
 * thread that starts the header reads with posix_fadvise(WILLNEED) (prefetch-worker.ts), so the
 * disk serves them side by side while `ls -l` still reads the listing; the lookups that follow
 * find the pages cached. Only the page cache is touched: answers still come from the lookup's
 * own checked read. Bounded: at most MAX_NAMES names and MAX_BATCHES directory descriptors queued;
 * the worker is started on demand and stopped when idle (it costs a few MB while it lives).
 */
import { constants as C } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { O_CLOEXEC, O_PATH, openat } from '../../lower/sys.js';

const MAX_NAMES = 8192;
const MAX_BATCHES = 64;
const IDLE_MS = 5000;

export class HeaderPrefetch {
  private worker: Worker | undefined;
  /** [names done, batches done], counted by the worker (its messages would wait for our event loop). */
  private readonly done = new Int32Array(new SharedArrayBuffer(8));
  private sentNames = 0;
  private sentBatches = 0;
  private idle: NodeJS.Timeout | undefined;
  /** ECRYPTFS_PREFETCH=0 turns it off (to compare). */
  private broken = process.env.ECRYPTFS_PREFETCH === '0';

  constructor(private readonly log: (m: string) => void = () => undefined) {}

  /** Start reading the headers of regular files `names` in directory `dir` (a descriptor we only borrow). */
  hint(dir: number, names: Buffer[]): void {
    if (this.broken) return;
    if (this.sentNames - Atomics.load(this.done, 0) + names.length > MAX_NAMES) return;
    if (this.pending() >= MAX_BATCHES) return;
    let own: number;
    try {
      // The worker's own handle on the directory: ours may be closed (LRU) before it is done.
      own = openat(dir, '.', O_PATH | C.O_DIRECTORY | O_CLOEXEC);
    } catch {
      return;
    }
    this.sentNames += names.length;
    this.sentBatches++;
    this.start().postMessage({ dir: own, names });
    this.idle?.refresh();
  }

  /** Batches handed over and not yet done. */
  pending(): number {
    return this.sentBatches - Atomics.load(this.done, 1);
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    // trackUnmanagedFds off: the worker closes descriptors this thread opened (its directories).
    const w = new Worker(new URL('./prefetch-worker.js', import.meta.url), { workerData: this.done.buffer, trackUnmanagedFds: false });
    w.unref();
    w.on('error', (e) => {
      this.broken = true;
      this.log(`header prefetch stopped: ${e.message}`);
    });
    w.on('exit', () => {
      if (this.worker === w) this.worker = undefined;
    });
    this.worker = w;
    this.idle = setInterval(() => this.stopIfIdle(), IDLE_MS).unref();
    return w;
  }

  private stopIfIdle(): void {
    if (this.pending() > 0) return;
    clearInterval(this.idle);
    this.idle = undefined;
    const w = this.worker;
    this.worker = undefined;
    void w?.terminate();
  }

  close(): void {
    clearInterval(this.idle);
    this.idle = undefined;
    void this.worker?.terminate();
    this.worker = undefined;
  }
}
