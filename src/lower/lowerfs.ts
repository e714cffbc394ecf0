/**
 * The small lower-directory interface the volume layer works on, and its node:fs implementation.
 * Paths are relative to the lower root ('' is the root itself) and use '/' separators.
 * Errors are Node's own (with .code such as ENOENT), so adapters can map them to errno values.
 */
import * as fs from 'node:fs';
import { constants as fsc, type Stats, type StatsFs } from 'node:fs';
import { join } from 'node:path';
import { getXattrIfAny, listXattr, removeXattr, setXattr } from './xattr.js';
import { mknodAt } from './mknod.js';

export interface LowerFile {
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

export interface LowerFs {
  /** Absolute path of the lower root (for messages and for helpers that need a real path). */
  readonly root: string;
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
}

function promisify<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(e);
  }
}

function ioAsync(op: typeof fs.read | typeof fs.write, fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    (op as (fd: number, b: Uint8Array, o: number, l: number, p: number, cb: (e: NodeJS.ErrnoException | null, n: number) => void) => void)(fd, buf, offset, length, position, (e, n) => (e ? reject(e) : resolve(n)));
  });
}

class NodeLowerFile implements LowerFile {
  constructor(private readonly fd: number, private readonly syncIoMax: number) {}
  async read(buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    if (length <= this.syncIoMax) return fs.readSync(this.fd, buf, offset, length, position);
    let done = 0;
    while (done < length) {
      const n = await ioAsync(fs.read, this.fd, buf, offset + done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  }
  async write(buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    let done = 0;
    while (done < length) {
      const n = length - done <= this.syncIoMax
        ? fs.writeSync(this.fd, buf, offset + done, length - done, position + done)
        : await ioAsync(fs.write, this.fd, buf, offset + done, length - done, position + done);
      done += n;
    }
    return done;
  }
  truncate(length: number): Promise<void> {
    return promisify(() => fs.ftruncateSync(this.fd, length));
  }
  stat(): Promise<Stats> {
    return promisify(() => fs.fstatSync(this.fd));
  }
  sync(): Promise<void> {
    return new Promise((resolve, reject) => fs.fsync(this.fd, (e) => (e ? reject(e) : resolve())));
  }
  close(): Promise<void> {
    return promisify(() => fs.closeSync(this.fd));
  }
}

export class NodeLowerFs implements LowerFs {
  private readonly syncIoMax: number;
  constructor(readonly root: string, opts: NodeLowerFsOptions = {}) {
    this.syncIoMax = opts.syncIoMax ?? SYNC_IO_MAX;
  }
  /** Absolute path for messages (a Buffer path shown as UTF-8). */
  abs(path: LowerPath): string {
    return path.length === 0 ? this.root : join(this.root, path.toString());
  }
  /** Absolute path for the system calls: a Buffer for a Buffer path, so no byte is changed. */
  private real(path: LowerPath): string | Buffer {
    if (typeof path === 'string') return this.abs(path);
    return path.length === 0 ? this.root : Buffer.concat([Buffer.from(this.root), Buffer.from('/'), path]);
  }
  open(path: LowerPath, mode: OpenMode, createMode = 0o600): Promise<LowerFile> {
    const flags = mode === 'r' ? fsc.O_RDONLY : mode === 'rw' ? fsc.O_RDWR : fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL;
    return promisify(() => new NodeLowerFile(fs.openSync(this.real(path), flags | fsc.O_NOFOLLOW, createMode), this.syncIoMax));
  }
  lstat(path: LowerPath) { return promisify(() => fs.lstatSync(this.real(path))); }
  stat(path: LowerPath) { return promisify(() => fs.statSync(this.real(path))); }
  readdir(path: LowerPath) { return promisify(() => fs.readdirSync(this.real(path))); }
  readdirBytes(path: LowerPath) { return promisify(() => fs.readdirSync(this.real(path), { encoding: 'buffer' })); }
  mkdir(path: LowerPath, mode: number) { return promisify(() => void fs.mkdirSync(this.real(path), { mode })); }
  rmdir(path: LowerPath) { return promisify(() => fs.rmdirSync(this.real(path))); }
  unlink(path: LowerPath) { return promisify(() => fs.unlinkSync(this.real(path))); }
  rename(from: LowerPath, to: LowerPath) { return promisify(() => fs.renameSync(this.real(from), this.real(to))); }
  symlink(target: LowerPath, path: LowerPath) { return promisify(() => fs.symlinkSync(target, this.real(path))); }
  readlink(path: LowerPath) { return promisify(() => fs.readlinkSync(this.real(path))); }
  readlinkBytes(path: LowerPath) { return promisify(() => fs.readlinkSync(this.real(path), { encoding: 'buffer' })); }
  mknod(path: LowerPath, mode: number, rdev: number) { return mknodAt(this.real(path), mode, rdev); }
  link(existing: LowerPath, path: LowerPath) { return promisify(() => fs.linkSync(this.real(existing), this.real(path))); }
  chmod(path: LowerPath, mode: number) { return promisify(() => fs.chmodSync(this.real(path), mode)); }
  lchown(path: LowerPath, uid: number, gid: number) { return promisify(() => fs.lchownSync(this.real(path), uid, gid)); }
  lutimes(path: LowerPath, atime: Date | number, mtime: Date | number) { return promisify(() => fs.lutimesSync(this.real(path), atime, mtime)); }
  statfs(path: LowerPath) { return promisify(() => fs.statfsSync(this.real(path))); }
  getxattr(path: LowerPath, name: string) { return getXattrIfAny(this.real(path), name, false); }
  setxattr(path: LowerPath, name: string, value: Uint8Array, flags = 0) { return setXattr(this.real(path), name, value, flags, false); }
  listxattr(path: LowerPath) { return listXattr(this.real(path), false); }
  removexattr(path: LowerPath, name: string) { return removeXattr(this.real(path), name, false); }
}
