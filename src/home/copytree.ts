/**
 * Copy a tree into a mounted eCryptfs home and verify it, as `rsync -aH --sparse` would and
 * then some: modes, owners, times, symlinks, hard links, holes. Copying is idempotent (an entry
 * whose type, size and mtime already match is kept), which is what makes migrate-home
 * resumable after an interruption: a file's mtime is set last, so one cut short never matches.
 *
 * Through FUSE every operation is a round trip to the mount daemon, so a few files are copied
 * and verified at a time to keep both sides busy.
 */
import { promises as fsp, type BigIntStats } from 'node:fs';
import { join } from 'node:path';

export interface CopyProgress {
  onTotal?(files: number, bytes: number): void;
  onEntry?(bytes: number): void;
}

export interface CopyReport {
  entries: number;
  bytes: number;
  skipped: string[];
}

/** Read and write size: the largest FUSE WRITE, so a MiB of data is one request. */
const CHUNK = 1 << 20;
/** All-zero runs of this size are not written (they read back as zeros). */
const HOLE = 1 << 16;
const ZEROS = Buffer.alloc(HOLE);
/** Files in flight at once; more than this only queues in libuv's 4 threads. */
const CONCURRENCY = 8;

/** Count entries and bytes first, for the progress bar. */
export async function measure(root: string, maxNameBytes = Infinity): Promise<{ entries: number; bytes: number; blocksBytes: number; longNames: string[] }> {
  const longNames: string[] = [];
  let entries = 0;
  let bytes = 0;
  let blocksBytes = 0;
  const walk = async (d: string) => {
    for (const e of await fsp.readdir(d)) {
      const st = await fsp.lstat(join(d, e));
      entries++;
      if (Buffer.byteLength(e) > maxNameBytes) longNames.push(join(d, e));
      blocksBytes += st.blocks * 512;
      if (st.isFile()) bytes += st.size;
      if (st.isDirectory()) await walk(join(d, e));
    }
  };
  await walk(root);
  return { entries, bytes, blocksBytes, longNames };
}

/**
 * Runs at most `size` tasks at once, in the order given. After the first failure it starts no
 * new work (queued tasks reject with that error), so a copy stops soon after something breaks.
 */
class Pool {
  private running = 0;
  private readonly queue: Array<() => void> = [];
  failed = false;
  private error: unknown;

  constructor(private readonly size: number) {}

  run<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const start = () => {
        this.running++;
        (this.failed ? Promise.reject(this.error) : fn())
          .then(resolve, (e: unknown) => {
            this.fail(e);
            reject(e);
          })
          .finally(() => {
            this.running--;
            this.queue.shift()?.();
          });
      };
      if (this.running < this.size) start();
      else this.queue.push(start);
    });
  }

  fail(e: unknown): void {
    if (!this.failed) [this.failed, this.error] = [true, e];
  }
}

/**
 * Collects promises that are awaited only later (a directory's children, once all are started),
 * marking each handled at once: a rejection must not count as unhandled (and end the process)
 * in the meantime.
 */
class Tasks {
  readonly all: Promise<unknown>[] = [];

  add<T>(p: Promise<T>): Promise<T> {
    p.catch(() => undefined);
    this.all.push(p);
    return p;
  }

  /** Wait for everything started, then fail with the first error if there was one. */
  async settle(): Promise<void> {
    for (let seen = 0; seen < this.all.length; ) {
      const batch = this.all.slice(seen);
      seen = this.all.length;
      for (const r of await Promise.allSettled(batch)) if (r.status === 'rejected') throw r.reason;
    }
  }
}

/**
 * Times match when within 10 µs: Node (libuv) sets times in whole microseconds from floating-point
 * seconds, and a copy's mtime is set twice that way (here, then by the mount daemon on the lower
 * file), so it may end up a microsecond or two early. A copy cut short has the time it was made.
 */
const sameTime = (a: bigint, b: bigint) => (a > b ? a - b : b - a) < 10_000n;

const sameEntry = (a: BigIntStats, b: BigIntStats | undefined) =>
  !!b && ((a.mode ^ b.mode) & 0o170000n) === 0n && (!a.isFile() || a.size === b.size) && sameTime(a.mtimeNs, b.mtimeNs);

/** Seconds, with the fraction: a Date would round to the millisecond (up to the next second, too). */
const seconds = (ns: bigint) => Number(ns) / 1e9;

/** Owner, then mode (chown clears set-id bits), then times (any change before would move them). */
async function applyMeta(dst: string, st: BigIntStats): Promise<void> {
  await fsp.lchown(dst, Number(st.uid), Number(st.gid));
  if (!st.isSymbolicLink()) await fsp.chmod(dst, Number(st.mode & 0o7777n));
  await fsp.lutimes(dst, seconds(st.atimeNs), seconds(st.mtimeNs));
}

/** Owner and mode of an entry kept from an earlier run, where they differ (its mtime matched). */
async function fixMeta(dst: string, st: BigIntStats, have: BigIntStats): Promise<void> {
  const owner = st.uid !== have.uid || st.gid !== have.gid;
  if (owner) await fsp.lchown(dst, Number(st.uid), Number(st.gid));
  if (!st.isSymbolicLink() && (owner || st.mode !== have.mode)) await fsp.chmod(dst, Number(st.mode & 0o7777n));
}

/**
 * Copy a regular file to a new `dst`, leaving all-zero 64 KiB runs as holes and writing each
 * run of data in one request. Metadata goes through the open descriptor: the daemon then
 * answers from the open file instead of reading the lower header again for each change.
 */
async function copyFile(src: string, dst: string, st: BigIntStats): Promise<void> {
  const size = Number(st.size);
  const inp = await fsp.open(src, 'r');
  try {
    const out = await fsp.open(dst, 'wx', 0o600);
    try {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, size));
      let end = 0;
      for (let pos = 0; pos < size; ) {
        const { bytesRead } = await inp.read(buf, 0, Math.min(CHUNK, size - pos), pos);
        if (bytesRead === 0) break;
        for (let o = 0; o < bytesRead; ) {
          const zero = (at: number) => buf.subarray(at, Math.min(at + HOLE, bytesRead)).equals(ZEROS.subarray(0, Math.min(HOLE, bytesRead - at)));
          if (zero(o)) {
            o += HOLE;
            continue;
          }
          let e = o + HOLE;
          while (e < bytesRead && !zero(e)) e += HOLE;
          e = Math.min(e, bytesRead);
          await out.write(buf, o, e - o, pos + o);
          end = pos + e;
          o = e;
        }
        pos += bytesRead;
      }
      if (end < size) await out.truncate(size);
      await out.chown(Number(st.uid), Number(st.gid));
      await out.chmod(Number(st.mode & 0o7777n));
      await out.utimes(seconds(st.atimeNs), seconds(st.mtimeNs));
    } finally {
      await out.close();
    }
  } finally {
    await inp.close();
  }
}

/** Copy `src`'s contents into `dst` (which exists). */
export async function copyTree(src: string, dst: string, progress: CopyProgress = {}): Promise<CopyReport> {
  const report: CopyReport = { entries: 0, bytes: 0, skipped: [] };
  const pool = new Pool(CONCURRENCY);
  const tasks = new Tasks();
  /** Per hard-link group (source dev:ino), the copy of its first name, once it is in place. */
  const firstNames = new Map<string, Promise<string>>();
  const done = (st: BigIntStats) => {
    report.entries++;
    if (st.isFile()) report.bytes += Number(st.size);
    progress.onEntry?.(st.isFile() ? Number(st.size) : 0);
  };

  /** Clear the way for a new copy; by name, as a damaged leftover may not even stat. */
  const replace = async (dp: string, exists: boolean) => {
    if (exists) await fsp.rm(dp, { recursive: true, force: true });
  };

  const copyEntry = async (sp: string, dp: string, st: BigIntStats, exists: boolean) => {
    const have = exists ? await fsp.lstat(dp, { bigint: true }).catch(() => undefined) : undefined;
    if (st.isSymbolicLink()) {
      const target = await fsp.readlink(sp);
      if (sameEntry(st, have) && (await fsp.readlink(dp)) === target) await fixMeta(dp, st, have!);
      else {
        await replace(dp, exists);
        await fsp.symlink(target, dp);
        await applyMeta(dp, st);
      }
    } else if (sameEntry(st, have)) await fixMeta(dp, st, have!);
    else {
      await replace(dp, exists);
      await copyFile(sp, dp, st);
    }
    done(st);
    return dp;
  };

  /** A later name of a hard-link group: a link to the first name's copy (kept if it is one). */
  const linkEntry = async (first: string, dp: string, st: BigIntStats, exists: boolean) => {
    const have = exists ? await fsp.lstat(dp, { bigint: true }).catch(() => undefined) : undefined;
    if (!have || have.ino !== (await fsp.lstat(first, { bigint: true })).ino) {
      await replace(dp, exists);
      await fsp.link(first, dp);
    }
    done(st);
  };

  /** Start copying directory `s` into `d`; `fresh` when `d` was just made (nothing to reuse). */
  const walk = async (s: string, d: string, fresh: boolean): Promise<{ finished: Promise<unknown> }> => {
    const there = new Set(fresh ? [] : await fsp.readdir(d));
    const children: Promise<unknown>[] = [];
    for (const name of await fsp.readdir(s)) {
      if (pool.failed) break;
      const sp = join(s, name);
      const dp = join(d, name);
      const st = await fsp.lstat(sp, { bigint: true });
      const exists = there.has(name);
      if (st.isDirectory()) {
        const have = exists ? await fsp.lstat(dp) : undefined;
        if (have && !have.isDirectory()) await fsp.rm(dp, { recursive: true, force: true });
        if (!have?.isDirectory()) await fsp.mkdir(dp, 0o700);
        const sub = await walk(sp, dp, !have?.isDirectory());
        // Its times last: creating its entries changed them.
        children.push(tasks.add(sub.finished.then(() => applyMeta(dp, st)).then(() => done(st))));
      } else if (st.isFile() && st.nlink > 1n && firstNames.has(`${st.dev}:${st.ino}`)) {
        const first = firstNames.get(`${st.dev}:${st.ino}`)!;
        children.push(tasks.add(first.then((f) => pool.run(() => linkEntry(f, dp, st, exists)))));
      } else if (st.isFile() || st.isSymbolicLink()) {
        const copied = tasks.add(pool.run(() => copyEntry(sp, dp, st, exists)));
        if (st.isFile() && st.nlink > 1n) firstNames.set(`${st.dev}:${st.ino}`, copied);
        children.push(copied);
      } else {
        // Sockets, FIFOs and devices do not belong in a home and eCryptfs has no mknod here.
        report.skipped.push(sp);
      }
    }
    return { finished: Promise.all(children) };
  };

  try {
    await walk(src, dst, false);
  } catch (e) {
    pool.fail(e);
    throw e;
  } finally {
    // Also after a failure: nothing may still be writing once we return.
    await tasks.settle();
  }
  return report;
}

/** Whether two files have the same bytes (compared directly: cheaper and surer than hashes). */
async function sameContent(a: string, b: string, size: number): Promise<boolean> {
  const [fa, fb] = await Promise.all([fsp.open(a, 'r'), fsp.open(b, 'r')]);
  try {
    const n = Math.min(CHUNK, size);
    const [ba, bb] = [Buffer.allocUnsafe(Math.max(n, 1)), Buffer.allocUnsafe(Math.max(n, 1))];
    for (let pos = 0; pos < size; pos += n) {
      const want = Math.min(n, size - pos);
      const [ra, rb] = await Promise.all([fa.read(ba, 0, want, pos), fb.read(bb, 0, want, pos)]);
      if (ra.bytesRead !== want || rb.bytesRead !== want || !ba.subarray(0, want).equals(bb.subarray(0, want))) return false;
    }
    // Nothing past the end either (the size was compared, but a file may grow).
    const [ea, eb] = await Promise.all([fa.read(ba, 0, 1, size), fb.read(bb, 0, 1, size)]);
    return ea.bytesRead === 0 && eb.bytesRead === 0;
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}

/**
 * Every entry of `src` against `dst`: type, mode, owner, mtime (directories too), size,
 * content, link target, hard links, and no entries in `dst` that `src` lacks (except at the
 * top, where an encrypted home also holds setup's .ecryptfs and .Private links). Returns the
 * problems; the `dst` paths that differ are added to `differing`.
 */
export async function verifyTree(src: string, dst: string, skip: Set<string> = new Set(), differing: string[] = []): Promise<string[]> {
  const problems: string[] = [];
  const pool = new Pool(CONCURRENCY);
  const tasks = new Tasks();
  /** Per hard-link group (source dev:ino), the inode its first-checked name has in `dst`. */
  const groups = new Map<string, bigint>();

  const check = async (sp: string, dp: string, a: BigIntStats) => {
    const b = await fsp.lstat(dp, { bigint: true }).catch(() => undefined);
    if (!b) {
      problems.push(`${dp}: missing`);
      differing.push(dp);
      return;
    }
    const what: string[] = [];
    if (a.mode !== b.mode) what.push(`mode ${a.mode.toString(8)} != ${b.mode.toString(8)}`);
    if (a.uid !== b.uid || a.gid !== b.gid) what.push(`owner ${a.uid}:${a.gid} != ${b.uid}:${b.gid}`);
    if (!sameTime(a.mtimeNs, b.mtimeNs)) what.push(`mtime ${a.mtimeNs} != ${b.mtimeNs}`);
    if (a.isFile() && b.isFile()) {
      if (a.size !== b.size) what.push(`size ${a.size} != ${b.size}`);
      else if (!(await sameContent(sp, dp, Number(a.size)))) what.push('content');
      if (a.nlink > 1n) {
        const k = `${a.dev}:${a.ino}`;
        const ino = groups.get(k);
        if (ino === undefined) groups.set(k, b.ino);
        else if (ino !== b.ino) what.push('hard link broken');
      }
    } else if (a.isSymbolicLink() && b.isSymbolicLink() && (await fsp.readlink(sp)) !== (await fsp.readlink(dp))) what.push('symlink target');
    if (what.length) {
      problems.push(`${dp}: ${what.join(', ')}`);
      differing.push(dp);
    }
  };

  const walk = async (s: string, d: string, top: boolean) => {
    const names = await fsp.readdir(s);
    if (!top) {
      const inSrc = new Set(names);
      for (const n of await fsp.readdir(d)) {
        if (inSrc.has(n)) continue;
        problems.push(`${join(d, n)}: not in ${s}`);
        differing.push(join(d, n));
      }
    }
    for (const name of names) {
      const sp = join(s, name);
      const dp = join(d, name);
      if (skip.has(sp)) continue;
      const a = await fsp.lstat(sp, { bigint: true });
      if (a.isDirectory()) {
        // Checked here, before its entries: a directory that is missing is one problem, not many.
        const before = problems.length;
        await check(sp, dp, a);
        const b = await fsp.lstat(dp).catch(() => undefined);
        if (b?.isDirectory()) await walk(sp, dp, false);
        else if (problems.length === before) {
          problems.push(`${dp}: not a directory`);
          differing.push(dp);
        }
      } else tasks.add(pool.run(() => check(sp, dp, a)));
    }
  };
  try {
    await walk(src, dst, true);
  } catch (e) {
    pool.fail(e);
    throw e;
  } finally {
    await tasks.settle();
  }
  // Checked a few at a time, found in no particular order.
  return problems.sort();
}
