/**
 * The small lower-directory interface the volume layer works on, and its node:fs implementation.
 * Paths are relative to the lower root ('' is the root itself) and use '/' separators.
 * Errors are Node's own (with .code such as ENOENT), so adapters can map them to errno values.
 */
import * as fs from 'node:fs';
import { constants as fsc, type Stats, type StatsFs } from 'node:fs';
import { join } from 'node:path';
import { getXattrIfAny, listXattr, removeXattr, setXattr } from './xattr.js';

export interface LowerFile {
  read(buf: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  write(buf: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  truncate(length: number): Promise<void>;
  stat(): Promise<Stats>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

export type OpenMode = 'r' | 'rw' | 'create-exclusive';

export interface LowerFs {
  /** Absolute path of the lower root (for messages and for helpers that need a real path). */
  readonly root: string;
  abs(path: string): string;
  open(path: string, mode: OpenMode, createMode?: number): Promise<LowerFile>;
  lstat(path: string): Promise<Stats>;
  stat(path: string): Promise<Stats>;
  readdir(path: string): Promise<string[]>;
  mkdir(path: string, mode: number): Promise<void>;
  rmdir(path: string): Promise<void>;
  unlink(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  readlink(path: string): Promise<string>;
  link(existing: string, path: string): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  lchown(path: string, uid: number, gid: number): Promise<void>;
  lutimes(path: string, atime: Date | number, mtime: Date | number): Promise<void>;
  statfs(path: string): Promise<StatsFs>;
  getxattr(path: string, name: string): Promise<Buffer | undefined>;
  setxattr(path: string, name: string, value: Uint8Array, flags?: number): Promise<void>;
  listxattr(path: string): Promise<string[]>;
  removexattr(path: string, name: string): Promise<void>;
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
  abs(path: string): string {
    return path === '' ? this.root : join(this.root, path);
  }
  open(path: string, mode: OpenMode, createMode = 0o600): Promise<LowerFile> {
    const flags = mode === 'r' ? fsc.O_RDONLY : mode === 'rw' ? fsc.O_RDWR : fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL;
    return promisify(() => new NodeLowerFile(fs.openSync(this.abs(path), flags | fsc.O_NOFOLLOW, createMode), this.syncIoMax));
  }
  lstat(path: string) { return promisify(() => fs.lstatSync(this.abs(path))); }
  stat(path: string) { return promisify(() => fs.statSync(this.abs(path))); }
  readdir(path: string) { return promisify(() => fs.readdirSync(this.abs(path))); }
  mkdir(path: string, mode: number) { return promisify(() => void fs.mkdirSync(this.abs(path), { mode })); }
  rmdir(path: string) { return promisify(() => fs.rmdirSync(this.abs(path))); }
  unlink(path: string) { return promisify(() => fs.unlinkSync(this.abs(path))); }
  rename(from: string, to: string) { return promisify(() => fs.renameSync(this.abs(from), this.abs(to))); }
  symlink(target: string, path: string) { return promisify(() => fs.symlinkSync(target, this.abs(path))); }
  readlink(path: string) { return promisify(() => fs.readlinkSync(this.abs(path))); }
  link(existing: string, path: string) { return promisify(() => fs.linkSync(this.abs(existing), this.abs(path))); }
  chmod(path: string, mode: number) { return promisify(() => fs.chmodSync(this.abs(path), mode)); }
  lchown(path: string, uid: number, gid: number) { return promisify(() => fs.lchownSync(this.abs(path), uid, gid)); }
  lutimes(path: string, atime: Date | number, mtime: Date | number) { return promisify(() => fs.lutimesSync(this.abs(path), atime, mtime)); }
  statfs(path: string) { return promisify(() => fs.statfsSync(this.abs(path))); }
  getxattr(path: string, name: string) { return getXattrIfAny(this.abs(path), name, false); }
  setxattr(path: string, name: string, value: Uint8Array, flags = 0) { return setXattr(this.abs(path), name, value, flags, false); }
  listxattr(path: string) { return listXattr(this.abs(path), false); }
  removexattr(path: string, name: string) { return removeXattr(this.abs(path), name, false); }
}
