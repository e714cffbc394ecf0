/** A small in-memory filesystem implementing FuseOperations, for the mount tests and the benchmark. */
import { FuseErrno } from '../../src/fuse/errno.js';
import { S_IFDIR, S_IFLNK, S_IFMT, S_IFREG } from '../../src/lower/mode.js';
import type { Attr, DirEntry, Entry, FuseOperations, RequestContext, SetattrChanges } from '../../src/fuse/operations.js';

const O_TRUNC = 0o1000;

interface Node {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  data: Buffer; // capacity; `size` bytes are the file
  size: number;
  target?: Buffer;
  children?: Map<string, number>; // latin1 keys: a byte-exact stand-in for the name
  xattrs: Map<string, Buffer>;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  lookups: number;
}

const key = (name: Buffer) => name.toString('latin1');

export class MemFs implements FuseOperations {
  private nodes = new Map<number, Node>();
  private nextIno = 2;
  private nextFh = 1;
  /** Counts of forget calls, so tests can see the kernel's reference accounting arrive. */
  forgets = 0;

  constructor(uid = process.getuid?.() ?? 0, gid = process.getgid?.() ?? 0) {
    this.nodes.set(1, this.newNode(1, S_IFDIR | 0o755, uid, gid));
    this.nodes.get(1)!.children = new Map();
    this.nodes.get(1)!.nlink = 2;
  }

  private newNode(ino: number, mode: number, uid: number, gid: number): Node {
    const now = Date.now();
    return { ino, mode, uid, gid, nlink: 1, data: Buffer.alloc(0), size: 0, xattrs: new Map(), atimeMs: now, mtimeMs: now, ctimeMs: now, lookups: 0 };
  }

  private get(ino: number): Node {
    const n = this.nodes.get(ino);
    if (!n) throw new FuseErrno('ESTALE');
    return n;
  }

  private dir(ino: number): Node & { children: Map<string, number> } {
    const n = this.get(ino);
    if (!n.children) throw new FuseErrno('ENOTDIR');
    return n as Node & { children: Map<string, number> };
  }

  private attr(n: Node): Attr {
    return {
      ino: n.ino,
      mode: n.mode,
      nlink: n.nlink,
      uid: n.uid,
      gid: n.gid,
      size: (n.mode & S_IFMT) === S_IFLNK ? n.target!.length : n.size,
      blksize: 4096,
      atimeMs: n.atimeMs,
      mtimeMs: n.mtimeMs,
      ctimeMs: n.ctimeMs,
    };
  }

  private entry(n: Node): Entry {
    n.lookups++;
    return { ino: n.ino, attr: this.attr(n) };
  }

  private add(parent: number, name: Buffer, mode: number, ctx: RequestContext): Node {
    const d = this.dir(parent);
    if (d.children.has(key(name))) throw new FuseErrno('EEXIST');
    const n = this.newNode(this.nextIno++, mode, ctx.uid, ctx.gid);
    this.nodes.set(n.ino, n);
    d.children.set(key(name), n.ino);
    d.mtimeMs = d.ctimeMs = Date.now();
    return n;
  }

  private drop(n: Node): void {
    if (n.nlink === 0 && n.lookups === 0) this.nodes.delete(n.ino);
  }

  lookup(parent: number, name: Buffer): Entry {
    const ino = this.dir(parent).children.get(key(name));
    if (ino === undefined) throw new FuseErrno('ENOENT');
    return this.entry(this.get(ino));
  }

  forget(ino: number, nlookup: number): void {
    this.forgets++;
    const n = this.nodes.get(ino);
    if (!n) return;
    n.lookups = Math.max(0, n.lookups - nlookup);
    this.drop(n);
  }

  getattr(ino: number): Attr {
    return this.attr(this.get(ino));
  }

  setattr(ino: number, c: SetattrChanges): Attr {
    const n = this.get(ino);
    const now = Date.now();
    if (c.mode !== undefined) n.mode = (n.mode & S_IFMT) | (c.mode & ~S_IFMT);
    if (c.uid !== undefined) n.uid = c.uid;
    if (c.gid !== undefined) n.gid = c.gid;
    if (c.size !== undefined) {
      if (n.children) throw new FuseErrno('EISDIR');
      this.resize(n, c.size);
      n.mtimeMs = now;
    }
    if (c.atimeMs !== undefined) n.atimeMs = c.atimeMs === 'now' ? now : c.atimeMs;
    if (c.mtimeMs !== undefined) n.mtimeMs = c.mtimeMs === 'now' ? now : c.mtimeMs;
    n.ctimeMs = now;
    return this.attr(n);
  }

  private resize(n: Node, size: number): void {
    if (size > n.data.length) {
      // Grow geometrically (capped) so that appending 1 MiB at a time is not quadratic.
      const grown = Buffer.alloc(Math.max(size, 4096, Math.min(n.data.length * 2, size + (64 << 20))));
      n.data.copy(grown, 0, 0, n.size);
      n.data = grown;
    } else if (size < n.size) {
      n.data.fill(0, size, n.size);
    }
    n.size = size;
  }

  readlink(ino: number): Buffer {
    const n = this.get(ino);
    if (!n.target) throw new FuseErrno('EINVAL');
    return n.target;
  }

  symlink(parent: number, name: Buffer, target: Buffer, ctx: RequestContext): Entry {
    const n = this.add(parent, name, S_IFLNK | 0o777, ctx);
    n.target = Buffer.from(target);
    return this.entry(n);
  }

  mknod(parent: number, name: Buffer, mode: number, _rdev: number, ctx: RequestContext): Entry {
    if ((mode & S_IFMT) !== S_IFREG) throw new FuseErrno('EPERM');
    return this.entry(this.add(parent, name, mode, ctx));
  }

  mkdir(parent: number, name: Buffer, mode: number, ctx: RequestContext): Entry {
    const n = this.add(parent, name, S_IFDIR | (mode & 0o7777), ctx);
    n.children = new Map();
    n.nlink = 2;
    this.get(parent).nlink++;
    return this.entry(n);
  }

  unlink(parent: number, name: Buffer): void {
    const d = this.dir(parent);
    const ino = d.children.get(key(name));
    if (ino === undefined) throw new FuseErrno('ENOENT');
    const n = this.get(ino);
    if (n.children) throw new FuseErrno('EISDIR');
    d.children.delete(key(name));
    n.nlink--;
    n.ctimeMs = d.mtimeMs = Date.now();
    this.drop(n);
  }

  rmdir(parent: number, name: Buffer): void {
    const d = this.dir(parent);
    const ino = d.children.get(key(name));
    if (ino === undefined) throw new FuseErrno('ENOENT');
    const n = this.dir(ino);
    if (n.children.size > 0) throw new FuseErrno('ENOTEMPTY');
    d.children.delete(key(name));
    d.nlink--;
    n.nlink = 0;
    this.drop(n);
  }

  rename(parent: number, name: Buffer, newParent: number, newName: Buffer, flags: number): void {
    if (flags & ~1) throw new FuseErrno('EINVAL'); // only RENAME_NOREPLACE
    const from = this.dir(parent);
    const to = this.dir(newParent);
    const ino = from.children.get(key(name));
    if (ino === undefined) throw new FuseErrno('ENOENT');
    const existing = to.children.get(key(newName));
    if (existing !== undefined && existing !== ino) {
      if (flags & 1) throw new FuseErrno('EEXIST');
      const victim = this.get(existing);
      if (victim.children) {
        if (victim.children.size > 0) throw new FuseErrno('ENOTEMPTY');
        to.nlink--;
        victim.nlink = 0;
      } else {
        victim.nlink--;
      }
      this.drop(victim);
    }
    from.children.delete(key(name));
    to.children.set(key(newName), ino);
    const n = this.get(ino);
    if (n.children && from !== to) {
      from.nlink--;
      to.nlink++;
    }
    n.ctimeMs = from.mtimeMs = to.mtimeMs = Date.now();
  }

  link(ino: number, newParent: number, newName: Buffer): Entry {
    const n = this.get(ino);
    if (n.children) throw new FuseErrno('EPERM');
    const d = this.dir(newParent);
    if (d.children.has(key(newName))) throw new FuseErrno('EEXIST');
    d.children.set(key(newName), ino);
    n.nlink++;
    n.ctimeMs = Date.now();
    return this.entry(n);
  }

  open(ino: number, flags: number) {
    const n = this.get(ino);
    // ATOMIC_O_TRUNC is negotiated: open(O_TRUNC) comes here instead of as a setattr.
    if (flags & O_TRUNC && !n.children) this.resize(n, 0);
    return { fh: this.nextFh++ };
  }

  create(parent: number, name: Buffer, mode: number, _flags: number, ctx: RequestContext) {
    const n = this.add(parent, name, mode, ctx);
    return { entry: this.entry(n), open: { fh: this.nextFh++ } };
  }

  read(ino: number, _fh: number, offset: number, size: number): Buffer {
    const n = this.get(ino);
    if (offset >= n.size) return Buffer.alloc(0);
    // A view is fine: the server writes it out before anything else can change the file.
    return n.data.subarray(offset, Math.min(n.size, offset + size));
  }

  write(ino: number, _fh: number, offset: number, data: Buffer): number {
    const n = this.get(ino);
    const end = offset + data.length;
    if (end > n.size) this.resize(n, end);
    data.copy(n.data, offset);
    n.mtimeMs = n.ctimeMs = Date.now();
    return data.length;
  }

  flush(): void {}
  fsync(): void {}

  readdir(ino: number, _fh: number, offset: number): DirEntry[] {
    const d = this.dir(ino);
    const all: DirEntry[] = [
      { name: '.', ino, mode: S_IFDIR },
      { name: '..', ino: 1, mode: S_IFDIR },
    ];
    for (const [k, child] of d.children) {
      all.push({ name: Buffer.from(k, 'latin1'), ino: child, mode: this.get(child).mode });
    }
    return all.slice(offset).map((e, i) => ({ ...e, offset: offset + i + 1 }));
  }

  statfs() {
    let used = 0;
    for (const n of this.nodes.values()) used += Math.ceil(n.size / 4096);
    return { blocks: 1 << 20, bfree: (1 << 20) - used, bavail: (1 << 20) - used, files: 1 << 16, ffree: (1 << 16) - this.nodes.size, bsize: 4096, namelen: 255 };
  }

  setxattr(ino: number, name: string, value: Buffer, flags: number): void {
    const n = this.get(ino);
    if (flags & 1 && n.xattrs.has(name)) throw new FuseErrno('EEXIST');
    if (flags & 2 && !n.xattrs.has(name)) throw new FuseErrno('ENODATA');
    n.xattrs.set(name, Buffer.from(value));
  }

  getxattr(ino: number, name: string): Buffer {
    const v = this.get(ino).xattrs.get(name);
    if (!v) throw new FuseErrno('ENODATA');
    return v;
  }

  listxattr(ino: number): string[] {
    return [...this.get(ino).xattrs.keys()];
  }

  removexattr(ino: number, name: string): void {
    if (!this.get(ino).xattrs.delete(name)) throw new FuseErrno('ENODATA');
  }

  fallocate(ino: number, _fh: number, offset: number, length: number, mode: number): void {
    if (mode !== 0) throw new FuseErrno('EOPNOTSUPP');
    const n = this.get(ino);
    if (offset + length > n.size) this.resize(n, offset + length);
  }
}
