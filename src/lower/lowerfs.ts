/**
 * The small lower-directory interface the volume layer works on, and its node:fs implementation.
 * Paths are relative to the lower root ('' is the root itself) and use '/' separators.
 * Errors are Node's own (with .code such as ENOENT), so adapters can map them to errno values.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { constants as fsc, type Stats, type StatsFs } from 'node:fs';
import { join, resolve } from 'node:path';
import { getXattrIfAny, listXattr, removeXattr, setXattr } from './xattr.js';
import { mknodAt } from './mknod.js';
import { O_PATH, sysError } from './sys.js';
import { attempt, readAt, writeAt } from './fdio.js';

export interface LowerFile {
  /**
   * The descriptor, offered for positioned reads and writes on the crypto pool's threads while a
   * transfer on this file is in progress (the library's node:fs files). Absent where I/O must stay
   * on the calling thread (the mount's files, whose I/O runs under the caller's credentials).
   */
  readonly poolFd?: number;
  read(buf: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  write(buf: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  truncate(length: number): Promise<void>;
  stat(): Promise<Stats>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

export type OpenMode = 'r' | 'rw' | 'create-exclusive';

/**
 * A path relative to the lower root: a string, or a Buffer when names are bytes that are not
 * UTF-8 (Linux names are byte strings; Node's fs takes Buffer paths as they are).
 */
export type LowerPath = string | Buffer;

/**
 * A path made absolute against the working directory, bytes kept as bytes: a Buffer is worked on
 * as Latin-1 (one character a byte, so '/' is found and no other byte changes) against the
 * working directory's own UTF-8 bytes.
 */
export function resolveBytes(p: LowerPath): LowerPath {
  if (typeof p === 'string') return resolve(p);
  return Buffer.from(resolve(Buffer.from(process.cwd()).toString('latin1'), p.toString('latin1')), 'latin1');
}

/**
 * The read side of a lower directory as a small interface free of Node types: what an adapter
 * over picked files (a browser's, a test's) has to implement to read a lower tree. Every LowerFs
 * is one.
 */
export interface LowerEntryStat {
  size: number;
  mode: number;
  mtimeMs: number;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

export interface LowerReadFile {
  read(buf: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  close(): Promise<void>;
}

export interface LowerReader {
  readdir(path: string): Promise<string[]>;
  lstat(path: string): Promise<LowerEntryStat>;
  open(path: string, mode: 'r'): Promise<LowerReadFile>;
}

export interface LowerFs {
  /** Absolute path of the lower root (for messages and for helpers that need a real path). */
  readonly root: string;
  /** The root held open (O_PATH): when set, every call resolves from it, never from `root` again. */
  readonly rootFd?: number;
  abs(path: LowerPath): string;
  open(path: LowerPath, mode: OpenMode, createMode?: number): Promise<LowerFile>;
  lstat(path: LowerPath): Promise<Stats>;
  stat(path: LowerPath): Promise<Stats>;
  readdir(path: LowerPath): Promise<string[]>;
  /** The names as the bytes they are (readdir decodes them as UTF-8, which is lossy). */
  readdirBytes(path: LowerPath): Promise<Buffer[]>;
  mkdir(path: LowerPath, mode: number): Promise<void>;
  rmdir(path: LowerPath): Promise<void>;
  unlink(path: LowerPath): Promise<void>;
  rename(from: LowerPath, to: LowerPath): Promise<void>;
  symlink(target: LowerPath, path: LowerPath): Promise<void>;
  readlink(path: LowerPath): Promise<string>;
  readlinkBytes(path: LowerPath): Promise<Buffer>;
  /** A FIFO, socket or device node (mode holds the type bits, as mknod(2) takes them). */
  mknod(path: LowerPath, mode: number, rdev: number): Promise<void>;
  link(existing: LowerPath, path: LowerPath): Promise<void>;
  chmod(path: LowerPath, mode: number): Promise<void>;
  lchown(path: LowerPath, uid: number, gid: number): Promise<void>;
  lutimes(path: LowerPath, atime: Date | number, mtime: Date | number): Promise<void>;
  statfs(path: LowerPath): Promise<StatsFs>;
  getxattr(path: LowerPath, name: string): Promise<Buffer | undefined>;
  setxattr(path: LowerPath, name: string, value: Uint8Array, flags?: number): Promise<void>;
  listxattr(path: LowerPath): Promise<string[]>;
  removexattr(path: LowerPath, name: string): Promise<void>;
}

/**
 * Small I/O (headers, size fields, metadata) uses synchronous syscalls: on a local lower
 * filesystem they take microseconds, while a trip through libuv's thread pool costs far more
 * (and the FUSE server keeps several pool threads busy). Large transfers stay asynchronous.
 */
const SYNC_IO_MAX = 4 << 20;

export interface NodeLowerFsOptions {
  /**
   * Transfers up to this size use synchronous syscalls (default 4 MiB). A server that must overlap
   * several requests' disk I/O (the FUSE daemon) sets it low so large transfers run in the pool.
   */
  syncIoMax?: number;
  /**
   * The root, opened by the caller without following links (openDirPath): calls go through its
   * /proc/self/fd link, so a path component swapped after the open (by a user owning a parent)
   * changes nothing. `root` then only names it in messages.
   */
  rootFd?: number;
}

class NodeLowerFile implements LowerFile {
  constructor(private readonly fd: number, private readonly syncIoMax: number) {}
  get poolFd(): number {
    return this.fd;
  }
  read(buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return readAt(this.fd, buf, offset, length, position, this.syncIoMax);
  }
  write(buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return writeAt(this.fd, buf, offset, length, position, this.syncIoMax);
  }
  truncate(length: number): Promise<void> {
    return attempt(() => fs.ftruncateSync(this.fd, length));
  }
  stat(): Promise<Stats> {
    return attempt(() => fs.fstatSync(this.fd));
  }
  sync(): Promise<void> {
    return new Promise((resolve, reject) => fs.fsync(this.fd, (e) => (e ? reject(e) : resolve())));
  }
  close(): Promise<void> {
    return attempt(() => fs.closeSync(this.fd));
  }
}

export class NodeLowerFs implements LowerFs {
  private readonly syncIoMax: number;
  /** The root as the bytes it is, when given as bytes that are not UTF-8 (a path from argv). */
  private readonly rootBytes: Buffer | undefined;
  /** The root for messages (bytes that are not UTF-8 shown as U+FFFD). */
  readonly root: string;
  readonly rootFd: number | undefined;
  /** Where the system calls start: the held root's /proc link, else the root's path. */
  private readonly base: string | undefined;
  constructor(root: string | Buffer, opts: NodeLowerFsOptions = {}) {
    this.syncIoMax = opts.syncIoMax ?? SYNC_IO_MAX;
    this.root = root.toString();
    this.rootFd = opts.rootFd;
    if (opts.rootFd !== undefined) this.base = `/proc/self/fd/${opts.rootFd}`;
    else if (typeof root !== 'string' && !Buffer.from(this.root).equals(root)) this.rootBytes = Buffer.from(root);
  }
  /** Absolute path for messages (a Buffer path shown as UTF-8). */
  abs(path: LowerPath): string {
    return path.length === 0 ? this.root : join(this.root, path.toString());
  }
  /** Absolute path for the system calls: a Buffer for a Buffer path or root, so no byte is changed. */
  private real(path: LowerPath): string | Buffer {
    if (this.base !== undefined) {
      if (path.length === 0) return this.base;
      return typeof path === 'string' ? `${this.base}/${path}` : Buffer.concat([Buffer.from(`${this.base}/`), path]);
    }
    if (typeof path === 'string' && !this.rootBytes) return this.abs(path);
    const root = this.rootBytes ?? Buffer.from(this.root);
    return path.length === 0 ? root : Buffer.concat([root, Buffer.from('/'), typeof path === 'string' ? Buffer.from(path) : path]);
  }
  open(path: LowerPath, mode: OpenMode, createMode = 0o600): Promise<LowerFile> {
    const flags = mode === 'r' ? fsc.O_RDONLY : mode === 'rw' ? fsc.O_RDWR : fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL;
    return attempt(() => new NodeLowerFile(fs.openSync(this.real(path), flags | fsc.O_NOFOLLOW, createMode), this.syncIoMax));
  }
  lstat(path: LowerPath) { return attempt(() => fs.lstatSync(this.real(path))); }
  stat(path: LowerPath) { return attempt(() => fs.statSync(this.real(path))); }
  readdir(path: LowerPath) { return attempt(() => fs.readdirSync(this.real(path))); }
  readdirBytes(path: LowerPath) { return attempt(() => fs.readdirSync(this.real(path), { encoding: 'buffer' })); }
  mkdir(path: LowerPath, mode: number) { return attempt(() => void fs.mkdirSync(this.real(path), { mode })); }
  rmdir(path: LowerPath) { return attempt(() => fs.rmdirSync(this.real(path))); }
  unlink(path: LowerPath) { return attempt(() => fs.unlinkSync(this.real(path))); }
  rename(from: LowerPath, to: LowerPath) { return attempt(() => fs.renameSync(this.real(from), this.real(to))); }
  symlink(target: LowerPath, path: LowerPath) { return attempt(() => fs.symlinkSync(target, this.real(path))); }
  readlink(path: LowerPath) { return attempt(() => fs.readlinkSync(this.real(path))); }
  readlinkBytes(path: LowerPath) { return attempt(() => fs.readlinkSync(this.real(path), { encoding: 'buffer' })); }
  mknod(path: LowerPath, mode: number, rdev: number) { return mknodAt(this.real(path), mode, rdev); }
  link(existing: LowerPath, path: LowerPath) { return attempt(() => fs.linkSync(this.real(existing), this.real(path))); }
  /**
   * chmod of the entry itself, never of what a symlink swapped in points to (chmod(2) follows):
   * on an O_PATH descriptor opened no-follow, through its /proc link. A symlink is refused (ELOOP).
   */
  chmod(path: LowerPath, mode: number) {
    return attempt(() => {
      const fd = fs.openSync(this.real(path), O_PATH | fsc.O_NOFOLLOW);
      try {
        if (fs.fstatSync(fd).isSymbolicLink()) throw sysError('chmod', os.constants.errno.ELOOP, path); // not the mode of a symlink
        fs.chmodSync(`/proc/self/fd/${fd}`, mode);
      } finally {
        fs.closeSync(fd);
      }
    });
  }
  lchown(path: LowerPath, uid: number, gid: number) { return attempt(() => fs.lchownSync(this.real(path), uid, gid)); }
  lutimes(path: LowerPath, atime: Date | number, mtime: Date | number) { return attempt(() => fs.lutimesSync(this.real(path), atime, mtime)); }
  statfs(path: LowerPath) { return attempt(() => fs.statfsSync(this.real(path))); }
  getxattr(path: LowerPath, name: string) { return getXattrIfAny(this.real(path), name, false); }
  setxattr(path: LowerPath, name: string, value: Uint8Array, flags = 0) { return setXattr(this.real(path), name, value, flags, false); }
  listxattr(path: LowerPath) { return listXattr(this.real(path), false); }
  removexattr(path: LowerPath, name: string) { return removeXattr(this.real(path), name, false); }
}
