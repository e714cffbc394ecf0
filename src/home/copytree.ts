/**
 * Copy a tree into a mounted eCryptfs home and verify it, as `rsync -aH --sparse` would and
 * then some: modes, owners, times, symlinks, hard links, holes. Copying is idempotent (an entry
 * whose type, size and mtime already match is kept), which is what makes migrate-home
 * resumable after an interruption: a file's mtime is set last, so one cut short never matches.
 *
 * Through FUSE every operation is a round trip to the mount daemon, so a few files are copied
 * and verified at a time to keep both sides busy.
 */
import { promises as fsp, constants as fsc, type BigIntStats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { EcryptfsError } from '../errors.js';
import { fgetxattr, flistxattr, fsetxattr, lgetxattr, llistxattr, mknodat } from '../lower/sys.js';
import { S_IFMT } from '../lower/mode.js';
import { at, entries, type Name, O_PATH, openDir, pin, removeAt, reopen, shown } from './held.js';

export interface CopyProgress {
  onTotal?(files: number, bytes: number): void;
  onEntry?(bytes: number): void;
}

export interface CopyReport {
  entries: number;
  bytes: number;
  /** Special files the destination could not make. */
  skipped: string[];
  /** Why, one line each. */
  skippedWhy: string[];
  /** Entries that changed or went while being copied (the verification then finds them). */
  changed: string[];
  /** Extended attributes (user.*, ACLs) the destination refused, with the error. */
  xattrsRefused: string[];
}

/** Read and write size: the largest FUSE WRITE, so a MiB of data is one request. */
const CHUNK = 1 << 20;
/** All-zero runs of this size are not written (they read back as zeros). */
const HOLE = 1 << 16;
const ZEROS = Buffer.alloc(HOLE);
/** Files in flight at once; more than this only queues in libuv's 4 threads. */
const CONCURRENCY = 8;

/** Count entries and bytes first, for the progress bar; names are bytes, links are not followed. */
export async function measure(root: string, maxNameBytes = Infinity): Promise<{ entries: number; bytes: number; blocksBytes: number; longNames: string[] }> {
  const longNames: string[] = [];
  let entries = 0;
  let bytes = 0;
  let blocksBytes = 0;
  const walk = async (d: Buffer) => {
    for (const e of await fsp.readdir(d, { encoding: 'buffer' })) {
      const p = Buffer.concat([d, Buffer.from('/'), e]);
      const st = await fsp.lstat(p).catch(() => undefined);
      if (!st) continue;
      entries++;
      if (e.length > maxNameBytes) longNames.push(shown(p));
      blocksBytes += st.blocks * 512;
      if (st.isFile()) bytes += st.size;
      if (st.isDirectory()) await walk(p).catch(() => undefined);
    }
  };
  await walk(Buffer.from(root));
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

const TYPE = BigInt(S_IFMT);

const sameEntry = (a: BigIntStats, b: BigIntStats | undefined) =>
  !!b && ((a.mode ^ b.mode) & TYPE) === 0n && (!a.isFile() || a.size === b.size) && sameTime(a.mtimeNs, b.mtimeNs);

/** Seconds, with the fraction: a Date would round to the millisecond (up to the next second, too). */
const seconds = (ns: bigint) => Number(ns) / 1e9;


/** Owner, then mode (chown clears set-id bits), then times, all on the open descriptor. */
async function metaOnFd(fh: FileHandle, st: BigIntStats): Promise<void> {
  await fh.chown(Number(st.uid), Number(st.gid));
  await fh.chmod(Number(st.mode & 0o7777n));
  await fh.utimes(seconds(st.atimeNs), seconds(st.mtimeNs));
}

/** Open what `name` in `dir` is now, without following a link or blocking on a FIFO, if it has `st`'s type. */
async function openSame(dir: FileHandle, name: Name, st: BigIntStats): Promise<FileHandle> {
  const flags = (st.isDirectory() ? fsc.O_DIRECTORY : 0) | fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK;
  const fh = await fsp.open(at(dir.fd, name), flags);
  const now = await fh.stat({ bigint: true });
  if (((now.mode ^ st.mode) & TYPE) !== 0n) {
    await fh.close();
    throw new EcryptfsError('EIO', `${shown(name)} changed type under the copy`);
  }
  return fh;
}

/** Owner, mode and times of a copy not reachable through a descriptor (symlinks, special files): by name, never following. */
async function metaAt(dir: FileHandle, name: Name, st: BigIntStats): Promise<void> {
  const path = at(dir.fd, name);
  await fsp.lchown(path, Number(st.uid), Number(st.gid));
  if (!st.isSymbolicLink()) {
    const p = await fsp.open(path, O_PATH | fsc.O_NOFOLLOW);
    try {
      // chmod of an O_PATH descriptor's magic link acts on exactly that inode.
      if (((await p.stat({ bigint: true })).mode & TYPE) === (st.mode & TYPE)) await fsp.chmod(`/proc/self/fd/${p.fd}`, Number(st.mode & 0o7777n));
    } finally {
      await p.close();
    }
  }
  await fsp.lutimes(path, seconds(st.atimeNs), seconds(st.mtimeNs));
}

/** Owner and mode of an entry kept from an earlier run, where they differ (its mtime matched). */
async function fixMeta(dir: FileHandle, name: Name, st: BigIntStats, have: BigIntStats): Promise<void> {
  const owner = st.uid !== have.uid || st.gid !== have.gid;
  if (!owner && st.mode === have.mode) return;
  if (!st.isFile() && !st.isDirectory()) return metaAt(dir, name, st);
  const fh = await openSame(dir, name, st);
  try {
    if (owner) await fh.chown(Number(st.uid), Number(st.gid));
    await fh.chmod(Number(st.mode & 0o7777n));
  } finally {
    await fh.close();
  }
}

/** Extended attributes worth copying: the user's own and POSIX ACLs (not security.* or trusted.*). */
const COPIED_XATTR = /^(user\.|system\.posix_acl_(access|default)$)/;

/**
 * Copy `from`'s extended attributes that `keep` accepts (by default user.* and ACLs) to `to`, both
 * open descriptors (no name is looked up again). Returns those the destination refused, with the error.
 */
export function copyXattrsFd(from: number, to: number, keep = (n: string) => COPIED_XATTR.test(n)): Array<{ name: string; code: string }> {
  let names: string[];
  try {
    names = flistxattr(from);
  } catch {
    return [];
  }
  const refused: Array<{ name: string; code: string }> = [];
  for (const n of names.filter(keep)) {
    let v: Buffer;
    try {
      v = fgetxattr(from, n);
    } catch {
      continue;
    }
    try {
      fsetxattr(to, n, v);
    } catch (e) {
      refused.push({ name: n, code: (e as NodeJS.ErrnoException).code ?? 'error' });
    }
  }
  return refused;
}

/** copyXattrsFd of two open files, each refusal as `NAME (CODE)`. */
const copyXattrs = (from: FileHandle, to: FileHandle): string[] => copyXattrsFd(from.fd, to.fd).map((r) => `${r.name} (${r.code})`);

/**
 * Copy a regular file from the open `inp` to a new `name` in `dir`, leaving all-zero 64 KiB runs
 * as holes and writing each run of data in one request. Metadata goes through the open descriptor:
 * the daemon then answers from the open file instead of reading the lower header again for each
 * change. Returns the attributes the destination refused.
 */
async function copyFile(inp: FileHandle, dir: FileHandle, name: Name, st: BigIntStats): Promise<string[]> {
  const size = Number(st.size);
  const out = await fsp.open(at(dir.fd, name), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  try {
    const buf = Buffer.allocUnsafe(Math.max(1, Math.min(CHUNK, size)));
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
    const refused = copyXattrs(inp, out);
    await metaOnFd(out, st);
    return refused;
  } finally {
    await out.close();
  }
}

/**
 * Copy `src`'s contents into `dst` (which exists), both reached only through directory
 * descriptors: each source entry is pinned (O_PATH|O_NOFOLLOW: no side effect, whatever it is),
 * its type and owner taken from that pin, and a file is read from the very inode pinned; a link
 * is read as it is (never followed). Copies are created O_EXCL|O_NOFOLLOW and given owner, mode
 * and times on their own descriptor. A user changing the source or the copy meanwhile can make
 * the copy differ (the verification that follows finds it), never make root read or write
 * anything else.
 */
export async function copyTree(src: string, dst: string, progress: CopyProgress = {}): Promise<CopyReport> {
  const report: CopyReport = { entries: 0, bytes: 0, skipped: [], skippedWhy: [], changed: [], xattrsRefused: [] };
  const pool = new Pool(CONCURRENCY);
  const tasks = new Tasks();
  /** Per hard-link group (source dev:ino), where its first name's copy is, once it is in place. */
  const firstNames = new Map<string, Promise<{ dir: FileHandle; name: Name }>>();
  /** Directories holding such a first name stay open to the end (a later name links to it). */
  const keep = new Set<FileHandle>();
  const done = (st: BigIntStats) => {
    report.entries++;
    if (st.isFile()) report.bytes += Number(st.size);
    progress.onEntry?.(st.isFile() ? Number(st.size) : 0);
  };
  const have = async (dir: FileHandle, name: Name, exists: boolean) => (exists ? fsp.lstat(at(dir.fd, name), { bigint: true }).catch(() => undefined) : undefined);

  const copyRegular = async (pinned: FileHandle, st: BigIntStats, dir: FileHandle, name: Name, path: string, exists: boolean) => {
    try {
      const old = await have(dir, name, exists);
      if (sameEntry(st, old)) await fixMeta(dir, name, st, old!);
      else {
        if (old) await removeAt(dir, name);
        const inp = await reopen(pinned, st);
        try {
          for (const r of await copyFile(inp, dir, name, st)) report.xattrsRefused.push(`${path}: ${r}`);
        } finally {
          await inp.close();
        }
      }
      done(st);
    } finally {
      await pinned.close();
    }
  };

  const copySymlink = async (sdir: FileHandle, st: BigIntStats, dir: FileHandle, name: Name, path: string, exists: boolean) => {
    let target: Buffer;
    try {
      // The link as it is now: if it is no longer one, it changed under us (EINVAL): reported, not fatal.
      target = await fsp.readlink(at(sdir.fd, name), { encoding: 'buffer' });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EINVAL' && code !== 'ENOENT') throw e;
      report.changed.push(path);
      return;
    }
    const old = await have(dir, name, exists);
    if (sameEntry(st, old) && (await fsp.readlink(at(dir.fd, name), { encoding: 'buffer' }).catch(() => undefined))?.equals(target)) await fixMeta(dir, name, st, old!);
    else {
      if (old) await removeAt(dir, name);
      await fsp.symlink(target, at(dir.fd, name));
      await metaAt(dir, name, st);
    }
    done(st);
  };

  const copySpecial = async (st: BigIntStats, dir: FileHandle, name: Name, path: string, exists: boolean) => {
    const old = await have(dir, name, exists);
    if (old && sameEntry(st, old) && old.rdev === st.rdev) await fixMeta(dir, name, st, old);
    else {
      if (old) await removeAt(dir, name);
      try {
        mknodat(dir.fd, name, Number(st.mode & TYPE) | 0o600, Number(st.rdev));
      } catch (e) {
        // Through a mount that cannot make them (EPERM): reported, as before.
        report.skipped.push(path);
        report.skippedWhy.push(`${path}: ${(e as Error).message}`);
        return;
      }
      await metaAt(dir, name, st);
    }
    done(st);
  };

  /** A later name of a hard-link group: a link to the first name's copy (kept if it is one). */
  const linkEntry = async (first: { dir: FileHandle; name: Name }, dir: FileHandle, name: Name, st: BigIntStats, exists: boolean) => {
    const old = await have(dir, name, exists);
    if (!old || old.ino !== (await fsp.lstat(at(first.dir.fd, first.name), { bigint: true })).ino) {
      if (old) await removeAt(dir, name);
      await fsp.link(at(first.dir.fd, first.name), at(dir.fd, name));
    }
    done(st);
  };

  /** Copy open directory `sdir` into open `ddir`; `fresh` when `ddir` was just made (nothing to reuse). */
  const walk = async (sdir: FileHandle, ddir: FileHandle, path: string, fresh: boolean): Promise<void> => {
    const there = new Set(fresh ? [] : (await entries(ddir)).map((n) => n.toString('latin1')));
    const children: Promise<unknown>[] = [];
    for (const name of await entries(sdir)) {
      if (pool.failed) break;
      const sp = join(path, shown(name));
      const exists = there.has(name.toString('latin1'));
      const pinned = await pin(sdir, name).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return undefined;
        throw e;
      });
      if (!pinned) {
        report.changed.push(sp);
        continue;
      }
      const { st } = pinned;
      if (st.isDirectory()) {
        let sub: FileHandle;
        try {
          sub = await reopen(pinned.fh, st, fsc.O_RDONLY | fsc.O_DIRECTORY);
        } finally {
          await pinned.fh.close();
        }
        try {
          const old = await have(ddir, name, exists);
          if (old && !old.isDirectory()) await removeAt(ddir, name);
          if (!old?.isDirectory()) await fsp.mkdir(at(ddir.fd, name), 0o700);
          const dsub = await openDir(ddir, name);
          try {
            // Its entries first (one directory at a time keeps few descriptors open), its times last.
            await walk(sub, dsub, sp, !old?.isDirectory());
            for (const r of copyXattrs(sub, dsub)) report.xattrsRefused.push(`${sp}: ${r}`);
            await metaOnFd(dsub, st);
            done(st);
          } finally {
            if (!keep.has(dsub)) await dsub.close();
          }
        } finally {
          await sub.close();
        }
      } else if (st.isFile() && st.nlink > 1n && firstNames.has(`${st.dev}:${st.ino}`)) {
        await pinned.fh.close();
        const first = firstNames.get(`${st.dev}:${st.ino}`)!;
        children.push(tasks.add(first.then((f) => pool.run(() => linkEntry(f, ddir, name, st, exists)))));
      } else if (st.isFile()) {
        const copied = tasks.add(pool.run(() => copyRegular(pinned.fh, st, ddir, name, sp, exists)));
        if (st.nlink > 1n) {
          keep.add(ddir);
          firstNames.set(`${st.dev}:${st.ino}`, copied.then(() => ({ dir: ddir, name })));
        }
        children.push(copied);
      } else {
        await pinned.fh.close();
        if (st.isSymbolicLink()) children.push(tasks.add(pool.run(() => copySymlink(sdir, st, ddir, name, sp, exists))));
        else children.push(tasks.add(pool.run(() => copySpecial(st, ddir, name, sp, exists))));
      }
    }
    await Promise.all(children);
  };

  const sroot = await openDir(undefined, src);
  const droot = await openDir(undefined, dst);
  try {
    await walk(sroot, droot, src, false);
  } catch (e) {
    pool.fail(e);
    throw e;
  } finally {
    // Also after a failure: nothing may still be writing once we return.
    await tasks.settle().finally(async () => {
      for (const fh of [sroot, droot, ...keep]) await fh.close().catch(() => undefined);
    });
  }
  return report;
}

/** Whether two files have the same bytes (compared directly: cheaper and surer than hashes). */
async function sameContent(a: Name, b: Name, size: number): Promise<boolean> {
  const open = async (p: Name) => {
    const fh = await fsp.open(p, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
    if (!(await fh.stat()).isFile()) {
      await fh.close();
      throw new EcryptfsError('EIO', `${shown(p)} changed type under the verification`);
    }
    return fh;
  };
  const fa = await open(a);
  const fb = await open(b).catch(async (e: unknown) => {
    await fa.close();
    throw e;
  });
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

/** The copied attributes of an entry (name → value, hex), or undefined where they cannot be read. */
function xattrsOf(p: Buffer): Map<string, string> | undefined {
  try {
    const out = new Map<string, string>();
    for (const n of llistxattr(p).filter((x) => COPIED_XATTR.test(x))) out.set(n, lgetxattr(p, n).toString('hex'));
    return out;
  } catch {
    return undefined;
  }
}

const child = (dir: Name, name: Buffer): Buffer => Buffer.concat([Buffer.from(dir), Buffer.from('/'), name]);

/**
 * Every entry of `src` against `dst`: type, mode, owner, mtime (directories too), size,
 * content, link target, device number, hard links, user.* attributes and ACLs (those the copy
 * could set: `xattrsRefused` lists the others), and no entries in `dst` that `src` lacks
 * (except at the top, where an encrypted home also holds setup's .ecryptfs and .Private links).
 * Names are bytes throughout. Returns the problems; the `dst` paths that differ are added to
 * `differing`.
 */
export async function verifyTree(src: string, dst: string, skip: Set<string> = new Set(), differing: Buffer[] = [], xattrsRefused: string[] = []): Promise<string[]> {
  const problems: string[] = [];
  const pool = new Pool(CONCURRENCY);
  const tasks = new Tasks();
  const refusedAt = new Set(xattrsRefused.map((r) => r.slice(0, r.lastIndexOf(': '))));
  /** Per hard-link group (source dev:ino), the inode its first-checked name has in `dst`. */
  const groups = new Map<string, bigint>();
  const differs = (dp: Buffer, what: string) => {
    problems.push(`${shown(dp)}: ${what}`);
    differing.push(dp);
  };

  /** `sp`/`dp` name the entry in messages; it is reached as `name` in the open `sdir`/`ddir`. */
  const check = async (sdir: FileHandle, ddir: FileHandle, name: Buffer, sp: Buffer, dp: Buffer, a: BigIntStats) => {
    const [sAt, dAt] = [at(sdir.fd, name), at(ddir.fd, name)];
    const b = await fsp.lstat(dAt, { bigint: true }).catch(() => undefined);
    if (!b) return differs(dp, 'missing');
    const what: string[] = [];
    if (a.mode !== b.mode) what.push(`mode ${a.mode.toString(8)} != ${b.mode.toString(8)}`);
    if (a.uid !== b.uid || a.gid !== b.gid) what.push(`owner ${a.uid}:${a.gid} != ${b.uid}:${b.gid}`);
    if (!sameTime(a.mtimeNs, b.mtimeNs)) what.push(`mtime ${a.mtimeNs} != ${b.mtimeNs}`);
    if (a.isFile() && b.isFile()) {
      if (a.size !== b.size) what.push(`size ${a.size} != ${b.size}`);
      else if (!(await sameContent(sAt, dAt, Number(a.size)).catch(() => false))) what.push('content');
      if (a.nlink > 1n) {
        const k = `${a.dev}:${a.ino}`;
        const ino = groups.get(k);
        if (ino === undefined) groups.set(k, b.ino);
        else if (ino !== b.ino) what.push('hard link broken');
      }
    } else if (a.isSymbolicLink() && b.isSymbolicLink()) {
      const [ta, tb] = await Promise.all([fsp.readlink(sAt, { encoding: 'buffer' }).catch(() => undefined), fsp.readlink(dAt, { encoding: 'buffer' }).catch(() => undefined)]);
      if (!ta || !tb || !ta.equals(tb)) what.push('symlink target');
    } else if ((a.isCharacterDevice() || a.isBlockDevice()) && a.rdev !== b.rdev) what.push(`device ${a.rdev} != ${b.rdev}`);
    if ((a.isFile() || a.isDirectory()) && !refusedAt.has(shown(sp))) {
      const [xa, xb] = [xattrsOf(Buffer.from(sAt)), xattrsOf(Buffer.from(dAt))];
      if (xa && xb && [...xa].some(([k, v]) => xb.get(k) !== v)) what.push('extended attributes');
    }
    if (what.length) differs(dp, what.join(', '));
  };

  /** Both trees through descriptors (no link on the way is followed), one directory at a time. */
  const walk = async (sdir: FileHandle, ddir: FileHandle, s: Buffer, d: Buffer, top: boolean) => {
    const names = await entries(sdir);
    if (!top) {
      const inSrc = new Set(names.map((n) => n.toString('latin1')));
      for (const n of await entries(ddir)) if (!inSrc.has(n.toString('latin1'))) differs(child(d, n), `not in ${shown(s)}`);
    }
    const children: Promise<unknown>[] = [];
    for (const name of names) {
      const sp = child(s, name);
      const dp = child(d, name);
      if (skip.has(shown(sp))) continue;
      const a = await fsp.lstat(at(sdir.fd, name), { bigint: true }).catch(() => undefined);
      if (!a) {
        problems.push(`${shown(sp)}: gone from the backup during the verification`);
        continue;
      }
      if (a.isDirectory()) {
        // Checked here, before its entries: a directory that is missing is one problem, not many.
        const before = problems.length;
        await check(sdir, ddir, name, sp, dp, a);
        const ssub = await openDir(sdir, name).catch(() => undefined);
        const dsub = await openDir(ddir, name).catch(() => undefined);
        try {
          if (ssub && dsub) await walk(ssub, dsub, sp, dp, false);
          else if (!dsub && problems.length === before) differs(dp, 'not a directory');
          else if (!ssub) problems.push(`${shown(sp)}: changed during the verification`);
        } finally {
          await ssub?.close();
          await dsub?.close();
        }
      } else children.push(tasks.add(pool.run(() => check(sdir, ddir, name, sp, dp, a))));
    }
    await Promise.allSettled(children);
  };
  const sroot = await openDir(undefined, src);
  const droot = await openDir(undefined, dst).catch(async (e: unknown) => {
    await sroot.close();
    throw e;
  });
  try {
    await walk(sroot, droot, Buffer.from(src), Buffer.from(dst), true);
  } catch (e) {
    pool.fail(e);
    throw e;
  } finally {
    await tasks.settle().finally(async () => {
      await sroot.close();
      await droot.close();
    });
  }
  // Checked a few at a time, found in no particular order.
  return problems.sort();
}
