/**
 * Clear sizes by lower inode, kept across FORGET: after the kernel dropped its inodes (memory
 * pressure, drop_caches) a cold `ls -l` of unchanged files reads no headers. Bounded, and compact
 * because it can hold an entry for every file of a huge directory: columns in typed arrays and
 * one Map entry with a number key per inode (~60 bytes each, no object or bigint per entry).
 */
export class ClearSizes {
  private readonly slot = new Map<number | string, number>();
  private keys: Array<number | string> = [];
  private size = new Float64Array(0);
  private clear = new Float64Array(0);
  private ctime = new BigInt64Array(0);
  private next = 0;

  constructor(readonly capacity: number) {}

  /** The clear size remembered for `key` when the lower file still has this size and ctime. */
  get(key: number | string, size: number, ctimeNs: bigint): number | undefined {
    const i = this.slot.get(key);
    if (i === undefined || this.size[i] !== size || this.ctime[i] !== ctimeNs) return undefined;
    return this.clear[i];
  }

  set(key: number | string, size: number, ctimeNs: bigint, clear: number): void {
    let i = this.slot.get(key);
    if (i === undefined) {
      // The oldest entry gives way once full (a ring: no LRU bookkeeping per hit).
      i = this.next;
      this.next = (this.next + 1) % this.capacity;
      if (i < this.keys.length) {
        const old = this.keys[i];
        if (this.slot.get(old) === i) this.slot.delete(old);
      } else this.grow(i + 1);
      this.keys[i] = key;
      this.slot.set(key, i);
    }
    this.size[i] = size;
    this.ctime[i] = ctimeNs;
    this.clear[i] = clear;
  }

  /** Whether `key` has an entry (current or not). */
  has(key: number | string): boolean {
    return this.slot.has(key);
  }

  /** Forget `key` (its inode is gone). */
  delete(key: number | string): void {
    const i = this.slot.get(key);
    if (i === undefined) return;
    this.slot.delete(key);
    this.size[i] = -1;
  }

  get count(): number {
    return this.slot.size;
  }

  /** Columns grow by doubling up to the capacity, so a small mount holds little. */
  private grow(need: number): void {
    if (need <= this.size.length) return;
    const n = Math.min(this.capacity, Math.max(1024, this.size.length * 2, need));
    const widen = <T extends Float64Array | BigInt64Array>(a: T, make: (n: number) => T): T => {
      const b = make(n);
      b.set(a as never);
      return b;
    };
    this.size = widen(this.size, (k) => new Float64Array(k));
    this.clear = widen(this.clear, (k) => new Float64Array(k));
    this.ctime = widen(this.ctime, (k) => new BigInt64Array(k));
  }
}
