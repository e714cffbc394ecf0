/** A small async readers-writer lock: reads of one file run together, writes run alone. */
export class RwLock {
  private readers = 0;
  private writer = false;
  private readonly queue: Array<{ write: boolean; go: () => void }> = [];

  /** Whether a read could start now (no writer holds or waits): a synchronous reader may just run. */
  get readFree(): boolean {
    return !this.writer && this.queue.length === 0;
  }

  /** Whether a write could start now (nobody holds or waits: the lock is idle): a synchronous writer may just run. */
  get writeFree(): boolean {
    return !this.writer && this.readers === 0 && this.queue.length === 0;
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const head = this.queue[0];
      if (head.write ? this.writer || this.readers > 0 : this.writer) return;
      this.queue.shift();
      if (head.write) this.writer = true;
      else this.readers++;
      head.go();
    }
  }

  private acquire(write: boolean): Promise<void> {
    return new Promise((go) => {
      this.queue.push({ write, go });
      this.pump();
    });
  }

  async read<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(false);
    try {
      return await fn();
    } finally {
      this.readers--;
      this.pump();
    }
  }

  async write<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(true);
    try {
      return await fn();
    } finally {
      this.writer = false;
      this.pump();
    }
  }
}
