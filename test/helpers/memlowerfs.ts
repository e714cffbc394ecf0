/**
 * An in-memory lower directory for tests, implementing the whole LowerFs (as isomorphic-git is
 * given `fs`): Volume.open(new MemLowerFs(), keys) works without a disk. Names are byte strings
 * (a Buffer path is taken as its bytes).
 */
import type { Stats, StatsFs } from 'node:fs';
import { S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, S_IFCHR, S_IFBLK } from '../../src/lower/mode.js';
import type { LowerFile, LowerFs, LowerPath, OpenMode } from '../../src/lower/lowerfs.js';


interface MemNode {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  data: Buffer;
  /** Children by name (latin1 of the name's bytes), for directories. */
  children?: Map<string, MemNode>;
  target?: Buffer;
  rdev: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  xattrs: Map<string, Buffer>;
}

function fsError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  const e = new Error(`${code}: ${syscall} '${path}'`) as NodeJS.ErrnoException;
  e.code = code;
  e.syscall = syscall;
  e.path = path;
  return e;
}

function statOf(n: MemNode): Stats {
  const t = n.mode & S_IFMT;
  const size = t === S_IFDIR ? 4096 : t === S_IFLNK ? n.target!.length : n.data.length;
  return {
    dev: 1, ino: n.ino, mode: n.mode, nlink: n.nlink, uid: n.uid, gid: n.gid, rdev: n.rdev, size, blksize: 4096,
    blocks: Math.ceil(size / 512), atimeMs: n.atimeMs, mtimeMs: n.mtimeMs, ctimeMs: n.ctimeMs, birthtimeMs: n.ctimeMs,
    atime: new Date(n.atimeMs), mtime: new Date(n.mtimeMs), ctime: new Date(n.ctimeMs), birthtime: new Date(n.ctimeMs),
    isFile: () => t === S_IFREG, isDirectory: () => t === S_IFDIR, isSymbolicLink: () => t === S_IFLNK,
    isFIFO: () => t === S_IFIFO, isSocket: () => t === S_IFSOCK, isCharacterDevice: () => t === S_IFCHR, isBlockDevice: () => t === S_IFBLK,
  } as Stats;
}

const key = (p: LowerPath) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p).toString('latin1');

class MemFile implements LowerFile {
  constructor(private readonly n: MemNode, private readonly writable: boolean) {}
  async read(buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    const end = Math.min(this.n.data.length, position + length);
    if (position >= end) return 0;
    buf.set(this.n.data.subarray(position, end), offset);
    return end - position;
  }
  async write(buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    if (!this.writable) throw fsError('EBADF', 'write', '');
    if (position + length > this.n.data.length) {
      const grown = Buffer.alloc(position + length);
      this.n.data.copy(grown);
      this.n.data = grown;
    }
    this.n.data.set(buf.subarray(offset, offset + length), position);
    this.n.mtimeMs = Date.now();
    return length;
  }
  async truncate(length: number): Promise<void> {
    const d = Buffer.alloc(length);
    this.n.data.copy(d, 0, 0, Math.min(length, this.n.data.length));
    this.n.data = d;
  }
  async stat(): Promise<Stats> {
    return statOf(this.n);
  }
  async sync(): Promise<void> {}
  async close(): Promise<void> {}
}

/** An in-memory lower directory (for tests and tools that work without a disk). */
export class MemLowerFs implements LowerFs {
  readonly root: string;
  private nextIno = 2;
  private readonly top: MemNode;
  constructor(root = 'mem:') {
    this.root = root;
    this.top = this.node(S_IFDIR | 0o755);
  }

  private node(mode: number): MemNode {
    const now = Date.now();
    return {
      ino: this.nextIno++, mode, uid: 0, gid: 0, nlink: 1, data: Buffer.alloc(0), rdev: 0, atimeMs: now, mtimeMs: now, ctimeMs: now, xattrs: new Map(),
      children: (mode & S_IFMT) === S_IFDIR ? new Map() : undefined,
    };
  }

  abs(path: LowerPath): string {
    const p = typeof path === 'string' ? path : path.toString('utf8');
    return p === '' ? this.root : `${this.root}/${p}`;
  }

  /** The parent directory and last name of a path (no symlink is followed: none below the root). */
  private split(path: LowerPath, syscall: string): { dir: MemNode; name: string } {
    const parts = key(path).split('/').filter((c) => c !== '' && c !== '.');
    const name = parts.pop();
    if (name === undefined) throw fsError('EINVAL', syscall, this.abs(path));
    let dir = this.top;
    for (const c of parts) {
      const next = dir.children?.get(c);
      if (!next) throw fsError('ENOENT', syscall, this.abs(path));
      if (!next.children) throw fsError('ENOTDIR', syscall, this.abs(path));
      dir = next;
    }
    return { dir, name };
  }

  private get(path: LowerPath, syscall: string): MemNode {
    if (key(path).split('/').every((c) => c === '' || c === '.')) return this.top;
    const { dir, name } = this.split(path, syscall);
    const n = dir.children!.get(name);
    if (!n) throw fsError('ENOENT', syscall, this.abs(path));
    return n;
  }

  private add(path: LowerPath, n: MemNode, syscall: string): void {
    const { dir, name } = this.split(path, syscall);
    if (dir.children!.has(name)) throw fsError('EEXIST', syscall, this.abs(path));
    dir.children!.set(name, n);
    dir.mtimeMs = Date.now();
  }

  async open(path: LowerPath, mode: OpenMode, createMode = 0o600): Promise<LowerFile> {
    if (mode === 'create-exclusive') {
      const n = this.node(S_IFREG | (createMode & 0o7777));
      this.add(path, n, 'open');
      return new MemFile(n, true);
    }
    const n = this.get(path, 'open');
    if ((n.mode & S_IFMT) === S_IFLNK) throw fsError('ELOOP', 'open', this.abs(path));
    if ((n.mode & S_IFMT) === S_IFDIR && mode === 'rw') throw fsError('EISDIR', 'open', this.abs(path));
    return new MemFile(n, mode === 'rw');
  }
  async lstat(path: LowerPath): Promise<Stats> {
    return statOf(this.get(path, 'lstat'));
  }
  async stat(path: LowerPath): Promise<Stats> {
    return statOf(this.get(path, 'stat'));
  }
  async readdirBytes(path: LowerPath): Promise<Buffer[]> {
    const n = this.get(path, 'scandir');
    if (!n.children) throw fsError('ENOTDIR', 'scandir', this.abs(path));
    return [...n.children.keys()].map((k) => Buffer.from(k, 'latin1'));
  }
  async readdir(path: LowerPath): Promise<string[]> {
    return (await this.readdirBytes(path)).map((b) => b.toString('utf8'));
  }
  async mkdir(path: LowerPath, mode: number): Promise<void> {
    this.add(path, this.node(S_IFDIR | (mode & 0o7777)), 'mkdir');
  }
  async rmdir(path: LowerPath): Promise<void> {
    const { dir, name } = this.split(path, 'rmdir');
    const n = dir.children!.get(name);
    if (!n) throw fsError('ENOENT', 'rmdir', this.abs(path));
    if (!n.children) throw fsError('ENOTDIR', 'rmdir', this.abs(path));
    if (n.children.size > 0) throw fsError('ENOTEMPTY', 'rmdir', this.abs(path));
    dir.children!.delete(name);
  }
  async unlink(path: LowerPath): Promise<void> {
    const { dir, name } = this.split(path, 'unlink');
    const n = dir.children!.get(name);
    if (!n) throw fsError('ENOENT', 'unlink', this.abs(path));
    if (n.children) throw fsError('EISDIR', 'unlink', this.abs(path));
    dir.children!.delete(name);
    n.nlink--;
  }
  async rename(from: LowerPath, to: LowerPath): Promise<void> {
    const a = this.split(from, 'rename');
    const n = a.dir.children!.get(a.name);
    if (!n) throw fsError('ENOENT', 'rename', this.abs(from));
    const b = this.split(to, 'rename');
    const old = b.dir.children!.get(b.name);
    if (old?.children && old.children.size > 0) throw fsError('ENOTEMPTY', 'rename', this.abs(to));
    a.dir.children!.delete(a.name);
    b.dir.children!.set(b.name, n);
  }
  async symlink(target: LowerPath, path: LowerPath): Promise<void> {
    const n = this.node(S_IFLNK | 0o777);
    n.target = Buffer.from(key(target), 'latin1');
    this.add(path, n, 'symlink');
  }
  async readlinkBytes(path: LowerPath): Promise<Buffer> {
    const n = this.get(path, 'readlink');
    if (!n.target) throw fsError('EINVAL', 'readlink', this.abs(path));
    return Buffer.from(n.target);
  }
  async readlink(path: LowerPath): Promise<string> {
    return (await this.readlinkBytes(path)).toString('utf8');
  }
  async mknod(path: LowerPath, mode: number, rdev: number): Promise<void> {
    const n = this.node(mode);
    n.rdev = rdev;
    this.add(path, n, 'mknod');
  }
  async link(existing: LowerPath, path: LowerPath): Promise<void> {
    const n = this.get(existing, 'link');
    if (n.children) throw fsError('EPERM', 'link', this.abs(existing));
    this.add(path, n, 'link');
    n.nlink++;
  }
  async chmod(path: LowerPath, mode: number): Promise<void> {
    const n = this.get(path, 'chmod');
    n.mode = (n.mode & S_IFMT) | (mode & 0o7777);
  }
  async lchown(path: LowerPath, uid: number, gid: number): Promise<void> {
    const n = this.get(path, 'lchown');
    if (uid >= 0) n.uid = uid;
    if (gid >= 0) n.gid = gid;
  }
  async lutimes(path: LowerPath, atime: Date | number, mtime: Date | number): Promise<void> {
    const n = this.get(path, 'lutimes');
    const ms = (t: Date | number) => (typeof t === 'number' ? t * 1000 : t.getTime());
    n.atimeMs = ms(atime);
    n.mtimeMs = ms(mtime);
  }
  async statfs(): Promise<StatsFs> {
    return { type: 0x858458f6, bsize: 4096, blocks: 1 << 20, bfree: 1 << 20, bavail: 1 << 20, files: 1 << 20, ffree: 1 << 20 } as StatsFs;
  }
  async getxattr(path: LowerPath, name: string): Promise<Buffer | undefined> {
    const v = this.get(path, 'getxattr').xattrs.get(name);
    return v && Buffer.from(v);
  }
  async setxattr(path: LowerPath, name: string, value: Uint8Array, flags = 0): Promise<void> {
    const n = this.get(path, 'setxattr');
    if (flags === 1 && n.xattrs.has(name)) throw fsError('EEXIST', 'setxattr', this.abs(path));
    if (flags === 2 && !n.xattrs.has(name)) throw fsError('ENODATA', 'setxattr', this.abs(path));
    n.xattrs.set(name, Buffer.from(value));
  }
  async listxattr(path: LowerPath): Promise<string[]> {
    return [...this.get(path, 'listxattr').xattrs.keys()];
  }
  async removexattr(path: LowerPath, name: string): Promise<void> {
    const n = this.get(path, 'removexattr');
    if (!n.xattrs.delete(name)) throw fsError('ENODATA', 'removexattr', this.abs(path));
  }
}
