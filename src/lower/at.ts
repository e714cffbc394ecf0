/**
 * The descriptor-relative lower directory the mount works on: nothing is resolved by a full path
 * string. Every call names a directory descriptor and one name (bytes); the final component is
 * never followed; files are opened O_NOFOLLOW|O_NONBLOCK and the type of what was opened is
 * checked with fstat, so a symlink or FIFO swapped in by a user neither leads elsewhere nor
 * blocks the daemon. Deep trees work however long their lower paths are.
 *
 * Descriptors are bounded: directories live in an LRU (FdLru) and are reopened from their parent
 * on a miss (as gocryptfs' OpenDirNofollow walks from the root); directory listings stream with
 * getdents64 (a small buffer, no snapshot); open files are one descriptor per inode (the mount).
 */
import * as fs from 'node:fs';
import { constants as C } from 'node:fs';
import { constants as OSC } from 'node:os';
import type { LowerFile } from './lowerfs.js';
import { attempt, readAt, writeAt } from './fdio.js';
import { isPageAligned } from '../sys/libc.js';
import {
  AT_FDCWD, cachedPages, fdPath, fgetxattr, flistxattr, fremovexattr, fsetxattr, fstat, fstatat, getdents, lseek, O_CLOEXEC, O_PATH, openat, readlinkat, sysError,
  type LowerStat, type RawDirent,
} from './sys.js';

export type { LowerStat } from './sys.js';

import { isReg, isDir, isLnk } from './mode.js';
export { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK, isReg, isDir, isLnk } from './mode.js';

/** Flags every lower open carries: never follow the last component, never block on a FIFO. */
export const SAFE_OPEN = C.O_NOFOLLOW | C.O_NONBLOCK | O_CLOEXEC;

function closeQuiet(fd: number): void {
  try {
    fs.closeSync(fd);
  } catch {
    // already closed
  }
}

/** An O_PATH handle on directory `name` in `dir`, checked to be a directory (and `want`'s inode). */
export function openDirAt(dir: number, name: Uint8Array | string, want?: { dev: number; ino: number }): number {
  const fd = openat(dir, name, O_PATH | C.O_DIRECTORY | C.O_NOFOLLOW | O_CLOEXEC);
  if (want) {
    const st = fstat(fd);
    if (st.dev !== want.dev || st.ino !== want.ino) {
      closeQuiet(fd);
      throw sysError('openat', OSC.errno.ESTALE, name);
    }
  }
  return fd;
}

/**
 * An absolute directory path opened one component at a time from '/', each no-follow: a symlink
 * anywhere on the way (one a user swapped in after the path was resolved) is refused (ELOOP,
 * ENOTDIR), never followed. The caller resolves symlinks it means to follow first (realpath).
 */
export function openDirPath(path: string): number {
  if (!path.startsWith('/')) throw sysError('openat', OSC.errno.EINVAL, path);
  let fd = openat(AT_FDCWD, '/', O_PATH | C.O_DIRECTORY | O_CLOEXEC);
  for (const part of path.split('/').filter((c) => c !== '' && c !== '.')) {
    let next: number;
    try {
      next = part === '..' ? openat(fd, '..', O_PATH | C.O_DIRECTORY | O_CLOEXEC) : openDirAt(fd, part);
    } finally {
      closeQuiet(fd);
    }
    fd = next;
  }
  return fd;
}

/**
 * A link only root can have made and only root can change: root's, in a directory of root's that
 * nobody else may write to (or may write to but, sticky, not remove root's entries from).
 */
function rootsLink(link: LowerStat, dir: LowerStat): boolean {
  return link.uid === 0 && dir.uid === 0 && ((dir.mode & 0o022) === 0 || (dir.mode & 0o1000) !== 0);
}

/**
 * openDirPath for root's tools in a user's tree: walked from / the same way, but a symbolic link
 * of root's (rootsLink, as /home -> /var/home) is followed; any other (one a user made, or could
 * replace) is refused with ELOOP. At most 40 links, as the kernel.
 */
export function openDirPathTrusted(path: string | Buffer): number {
  const bytes = Buffer.from(path);
  if (bytes[0] !== 0x2f) throw sysError('openat', OSC.errno.EINVAL, path);
  const fromRoot = () => openat(AT_FDCWD, '/', O_PATH | C.O_DIRECTORY | O_CLOEXEC);
  // Components still to walk, the next one last (bytes: names need not be UTF-8).
  const todo: Buffer[] = [];
  const push = (p: Buffer) => {
    const parts: Buffer[] = [];
    for (let i = 0; i <= p.length; ) {
      let j = p.indexOf(0x2f, i);
      if (j < 0) j = p.length;
      const c = p.subarray(i, j);
      if (c.length > 0 && !(c.length === 1 && c[0] === 0x2e)) parts.push(c);
      i = j + 1;
    }
    todo.push(...parts.reverse());
  };
  push(bytes);
  let fd = fromRoot();
  let links = 0;
  try {
    while (todo.length > 0) {
      const part = todo.pop()!;
      let next: number;
      if (part.length === 2 && part[0] === 0x2e && part[1] === 0x2e) next = openat(fd, '..', O_PATH | C.O_DIRECTORY | O_CLOEXEC);
      else {
        const st = fstatat(fd, part);
        if (isLnk(st.mode)) {
          if (++links > 40 || !rootsLink(st, fstat(fd))) throw sysError('openat', OSC.errno.ELOOP, part);
          const target = readlinkat(fd, part);
          push(target);
          if (target[0] !== 0x2f) continue;
          next = fromRoot();
        } else next = openDirAt(fd, part, st);
      }
      closeQuiet(fd);
      fd = next;
    }
    return fd;
  } catch (e) {
    closeQuiet(fd);
    throw e;
  }
}

/** The path the kernel gives the directory openDirPathTrusted reaches from `path` (root's links resolved). */
export function realPathTrusted(path: string): string {
  const fd = openDirPathTrusted(path);
  try {
    return fs.readlinkSync(fdPath(fd));
  } finally {
    closeQuiet(fd);
  }
}

/**
 * Open regular file `name` in `dir` (O_NOFOLLOW|O_NONBLOCK), checked with fstat of what was
 * opened: not a regular file (a FIFO, device, directory) is refused with `notFile` (EIO by
 * default); `want` pins the inode the caller means.
 */
export function openFileAt(
  dir: number,
  name: Uint8Array | string,
  flags: number,
  mode = 0,
  want?: { dev: number; ino: number },
): { fd: number; st: LowerStat } {
  const fd = openat(dir, name, flags | SAFE_OPEN, mode);
  let st: LowerStat;
  try {
    st = fstat(fd);
  } catch (e) {
    closeQuiet(fd);
    throw e;
  }
  if (!isReg(st.mode) || (want && (st.dev !== want.dev || st.ino !== want.ino))) {
    closeQuiet(fd);
    throw sysError('open', isReg(st.mode) ? OSC.errno.ESTALE : isDir(st.mode) ? OSC.errno.EISDIR : OSC.errno.EIO, name);
  }
  return { fd, st };
}

/** Reads of at least this many bytes, at offsets and of lengths in whole pages, may use O_DIRECT (FdLowerFile.direct). */
const DIRECT_MIN = 128 * 1024;
const DIRECT_ALIGN = 4096;
const DIRECT_READS = process.env.ECRYPTFS_DIRECT_READS !== '0';
/**
 * O_DIRECT descriptors open at once in the process, at most: they are not charged to a user's
 * descriptors (the mount counts open files), so their number is bounded here; past it, reads go
 * through the page cache.
 */
export const DIRECT_FDS_MAX = 64;
let directFds = 0;

/** A lower file by its descriptor, with its extended attributes on the same descriptor. */
export class FdLowerFile implements LowerFile {
  private closed = false;
  /**
   * `label` names the file in messages; given as a function it is built only when a message needs
   * it (a lower path of encrypted names is several string conversions, on every create and open).
   */
  constructor(readonly fd: number, private readonly syncIoMax: number, private labelOf: string | (() => string)) {}
  get label(): string {
    if (typeof this.labelOf !== 'string') this.labelOf = this.labelOf();
    return this.labelOf;
  }
  /** A closed descriptor's number may belong to another file by now: never use it. */
  private live(): void {
    if (this.closed) throw sysError('read', OSC.errno.EBADF, this.label);
  }
  read(buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const live = () => this.live();
    const d = this.directReads && this.directFd !== null && length >= DIRECT_MIN && length % DIRECT_ALIGN === 0 && position % DIRECT_ALIGN === 0
      // Into page-aligned memory only (the mount's READ buffers; any other gets EINVAL from O_DIRECT).
      && isPageAligned(buf, offset)
      // Only a range none of which is in the lower page cache: a cached one is copied faster than read again.
      && cachedPages(this.fd, position, length) === 0 ? this.direct() : null;
    if (d === null) return readAt(this.fd, buf, offset, length, position, this.syncIoMax, live);
    // A filesystem that wants more alignment than a page refuses it (EINVAL): read as usual.
    return readAt(d, buf, offset, length, position, this.syncIoMax, live).catch((e: NodeJS.ErrnoException) =>
      e.code === 'EINVAL' ? readAt(this.fd, buf, offset, length, position, this.syncIoMax, live) : Promise.reject(e));
  }
  /**
   * A second descriptor on this file for large reads, with O_DIRECT: the lower filesystem reads
   * into our buffer, not into its page cache and then copied (the copy was half the daemon's CPU
   * in cold reads on disk; the clear bytes are cached above, in the mount's own page cache). Opened
   * at the first large read through this descriptor's /proc link (our own descriptor table, no path
   * a user can change), and kept only if it is the same regular file. null where O_DIRECT is refused.
   */
  private direct(): number | null {
    if (this.directFd !== undefined) return this.directFd;
    this.directFd = null;
    if (!DIRECT_READS || directFds >= DIRECT_FDS_MAX) {
      this.directFd = undefined; // asked again later: one may be free by then
      return null;
    }
    let d: number;
    try {
      d = fs.openSync(fdPath(this.fd), C.O_RDONLY | C.O_DIRECT | C.O_NONBLOCK | O_CLOEXEC);
    } catch {
      return null;
    }
    try {
      const a = fstat(d), b = fstat(this.fd);
      if (a.dev === b.dev && a.ino === b.ino && isReg(a.mode)) this.directFd = d;
    } catch {
      // not kept
    }
    if (this.directFd === null) closeQuiet(d);
    else directFds++;
    return this.directFd;
  }
  private directFd: number | null | undefined;
  /**
   * Whether large reads may use O_DIRECT now (the mount sets it while several processes read at
   * once). One reader is better served by the lower page cache: its readahead keeps the disk
   * busy ahead of the reads, where direct reads wait for each 1 MiB.
   */
  directReads = false;
  write(buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return writeAt(this.fd, buf, offset, length, position, this.syncIoMax, () => this.live());
  }
  /** read() on this thread, for a server answering a small request without a promise. */
  readSync(buf: Uint8Array, offset: number, length: number, position: number): number {
    this.live();
    let done = 0;
    while (done < length) {
      const n = fs.readSync(this.fd, buf, offset + done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  }
  /** write() of all `length` bytes on this thread (as readSync). */
  writeSync(buf: Uint8Array, offset: number, length: number, position: number): number {
    this.live();
    let done = 0;
    while (done < length) done += fs.writeSync(this.fd, buf, offset + done, length - done, position + done);
    return done;
  }
  truncate(length: number): Promise<void> {
    return attempt(() => {
      this.live();
      fs.ftruncateSync(this.fd, length);
    });
  }
  stat(): Promise<fs.Stats> {
    return attempt(() => {
      this.live();
      return fs.fstatSync(this.fd);
    });
  }
  lstat(): LowerStat {
    this.live();
    return fstat(this.fd);
  }
  sync(): Promise<void> {
    if (this.closed) return Promise.reject(sysError('fsync', OSC.errno.EBADF, this.label));
    return new Promise((resolve, reject) => fs.fsync(this.fd, (e) => (e ? reject(e) : resolve())));
  }
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    if (typeof this.directFd === 'number') {
      closeQuiet(this.directFd);
      directFds--;
    }
    return attempt(() => fs.closeSync(this.fd));
  }
  getxattr(name: string): Promise<Buffer | undefined> {
    return attempt(() => {
      this.live();
      try {
        return fgetxattr(this.fd, name);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENODATA' || code === 'EOPNOTSUPP') return undefined;
        throw e;
      }
    });
  }
  setxattr(name: string, value: Uint8Array, flags = 0): Promise<void> {
    return attempt(() => {
      this.live();
      fsetxattr(this.fd, name, value, flags);
    });
  }
  setxattrSync(name: string, value: Uint8Array, flags = 0): void {
    this.live();
    fsetxattr(this.fd, name, value, flags);
  }
  listxattr(): string[] {
    this.live();
    return flistxattr(this.fd);
  }
  removexattr(name: string): void {
    this.live();
    fremovexattr(this.fd, name);
  }
}

/**
 * An LRU of descriptors by key, at most `cap` open; evicted ones are closed. Callers take a
 * descriptor and use it synchronously (no await in between), so eviction never closes one in use.
 */
export class FdLru<K> {
  private readonly map = new Map<K, number>();
  constructor(private readonly cap: number) {}
  get(key: K): number | undefined {
    const fd = this.map.get(key);
    if (fd === undefined) return undefined;
    this.map.delete(key);
    this.map.set(key, fd);
    return fd;
  }
  put(key: K, fd: number): void {
    const old = this.map.get(key);
    if (old !== undefined && old !== fd) closeQuiet(old);
    this.map.delete(key);
    this.map.set(key, fd);
    while (this.map.size > this.cap) {
      const [k, f] = this.map.entries().next().value as [K, number];
      this.map.delete(k);
      closeQuiet(f);
    }
  }
  drop(key: K): void {
    const fd = this.map.get(key);
    if (fd === undefined) return;
    this.map.delete(key);
    closeQuiet(fd);
  }
  clear(): void {
    for (const fd of this.map.values()) closeQuiet(fd);
    this.map.clear();
  }
  get size(): number {
    return this.map.size;
  }
}

const direntBuf = Buffer.alloc(32 * 1024);

/**
 * A streaming directory listing on its own O_RDONLY descriptor. Positions are counts of lower
 * entries (stable while the directory does not change); the lower cookies of recent positions are
 * kept so a reader resuming where it stopped costs one lseek; any other position rewinds.
 */
export class DirStream {
  private pos = 0;
  private readonly cookies = new Map<number, bigint>();
  private pending: RawDirent[] = [];
  private eof = false;
  constructor(readonly fd: number) {}

  /** Up to `max` raw entries from position `at` on; each is paired with its position after it. */
  read(at: number, max: number): Array<{ d: RawDirent; next: number }> {
    if (at !== this.pos) this.seek(at);
    const out: Array<{ d: RawDirent; next: number }> = [];
    while (out.length < max) {
      if (this.pending.length === 0) {
        if (this.eof) break;
        this.pending = getdents(this.fd, direntBuf);
        if (this.pending.length === 0) {
          this.eof = true;
          break;
        }
      }
      const d = this.pending.shift()!;
      this.pos++;
      if (this.cookies.size >= 1024) this.cookies.delete(this.cookies.keys().next().value as number);
      this.cookies.set(this.pos, d.off);
      out.push({ d, next: this.pos });
    }
    return out;
  }

  private seek(at: number): void {
    this.pending = [];
    this.eof = false;
    const cookie = this.cookies.get(at);
    if (cookie !== undefined) {
      lseek(this.fd, cookie, 0);
      this.pos = at;
      return;
    }
    lseek(this.fd, 0n, 0);
    this.pos = 0;
    while (this.pos < at) {
      const got = this.read(this.pos, Math.min(at - this.pos, 4096));
      if (got.length === 0) break;
    }
  }

  close(): void {
    closeQuiet(this.fd);
  }
}

/** Open a directory stream on directory handle `dir` (permission checked as the caller, if switched). */
export function openDirStream(dir: number): DirStream {
  const fd = openat(dir, '.', C.O_RDONLY | C.O_DIRECTORY | O_CLOEXEC);
  return new DirStream(fd);
}
