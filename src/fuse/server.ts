/**
 * A FUSE server speaking the kernel protocol on an open /dev/fuse descriptor, with no native
 * code. Inode-based, like libfuse's low-level API: the kernel names files by node ids the
 * filesystem hands out in lookup/create/mkdir replies. Knows nothing of eCryptfs.
 *
 * Several reads are kept pending on the descriptor (each holds a libuv pool thread, so the
 * process must start with UV_THREADPOOL_SIZE above `concurrency`); each reply is one writev.
 * Request buffers are pooled and reused; a WRITE's data is only valid during the call.
 */
import { read as fsRead, writevSync, closeSync } from 'node:fs';
import { constants as OSC } from 'node:os';
import {
  attrOut, cstring, direntSize, entryOut, Fattr, FUSE_KERNEL_MINOR_VERSION, FUSE_KERNEL_VERSION, IN_HEADER_SIZE,
  INIT_OUT_SIZE, InitFlag, Op, openOut, OUT_HEADER_SIZE, ProtocolError, readInHeader, statfsOut, writeDirent,
  type FuseAttr, type InHeader, type StatfsInfo,
} from './abi.js';

const E = OSC.errno;

export interface RequestContext {
  uid: number;
  gid: number;
  pid: number;
}

export interface FuseEntry {
  nodeid: number;
  attr: FuseAttr;
}

export interface SetattrChanges {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atimeMs?: number;
  mtimeMs?: number;
  fh?: number;
}

export interface DirEntryOut {
  name: Buffer;
  ino: number;
  type: 'file' | 'dir' | 'symlink' | 'other';
}

/** The filesystem. Throw an error with `errno` (positive) or a Node error `code` to fail a call. */
export interface FuseOperations {
  lookup(parent: number, name: Buffer, ctx: RequestContext): Promise<FuseEntry>;
  forget?(nodeid: number, nlookup: number): void;
  getattr(nodeid: number, ctx: RequestContext): Promise<FuseAttr>;
  setattr?(nodeid: number, changes: SetattrChanges, ctx: RequestContext): Promise<FuseAttr>;
  readlink?(nodeid: number, ctx: RequestContext): Promise<Buffer>;
  symlink?(parent: number, name: Buffer, target: Buffer, ctx: RequestContext): Promise<FuseEntry>;
  mkdir?(parent: number, name: Buffer, mode: number, ctx: RequestContext): Promise<FuseEntry>;
  mknod?(parent: number, name: Buffer, mode: number, rdev: number, ctx: RequestContext): Promise<FuseEntry>;
  unlink?(parent: number, name: Buffer, ctx: RequestContext): Promise<void>;
  rmdir?(parent: number, name: Buffer, ctx: RequestContext): Promise<void>;
  rename?(parent: number, name: Buffer, newParent: number, newName: Buffer, flags: number, ctx: RequestContext): Promise<void>;
  link?(nodeid: number, newParent: number, newName: Buffer, ctx: RequestContext): Promise<FuseEntry>;
  open?(nodeid: number, flags: number, ctx: RequestContext): Promise<number>;
  create?(parent: number, name: Buffer, mode: number, flags: number, ctx: RequestContext): Promise<{ entry: FuseEntry; fh: number }>;
  read?(nodeid: number, fh: number, offset: number, size: number): Promise<Buffer>;
  write?(nodeid: number, fh: number, offset: number, data: Buffer): Promise<number>;
  flush?(nodeid: number, fh: number): Promise<void>;
  release?(nodeid: number, fh: number): Promise<void>;
  fsync?(nodeid: number, fh: number, datasync: boolean): Promise<void>;
  /** Whole directory listing; the server snapshots it per opendir so offsets stay stable. */
  readdir?(nodeid: number, ctx: RequestContext): Promise<DirEntryOut[]>;
  statfs?(nodeid: number): Promise<StatfsInfo>;
  setxattr?(nodeid: number, name: string, value: Buffer, flags: number): Promise<void>;
  getxattr?(nodeid: number, name: string): Promise<Buffer>;
  listxattr?(nodeid: number): Promise<string[]>;
  removexattr?(nodeid: number, name: string): Promise<void>;
  access?(nodeid: number, mask: number, ctx: RequestContext): Promise<void>;
  fallocate?(nodeid: number, fh: number, offset: number, length: number, mode: number): Promise<void>;
  destroy?(): Promise<void>;
}

export interface FuseServerOptions {
  /** Seconds the kernel may cache lookups and attributes. */
  entryTimeout?: number;
  attrTimeout?: number;
  /** Reads kept pending on /dev/fuse. */
  concurrency?: number;
  maxWrite?: number;
  /** Called for failures the kernel cannot be told about. */
  log?: (msg: string) => void;
}

export class FuseErrno extends Error {
  constructor(readonly errno: number, message?: string) {
    super(message ?? `errno ${errno}`);
  }
}

/** errno for any error an operation threw. */
export function errnoOf(e: unknown): number {
  const x = e as { errno?: unknown; code?: unknown };
  if (typeof x?.errno === 'number' && x.errno > 0 && !(typeof x.code === 'string' && x.code in E)) return x.errno;
  if (typeof x?.code === 'string' && x.code in E) return (E as Record<string, number>)[x.code];
  if (typeof x?.errno === 'number' && x.errno > 0) return x.errno;
  return E.EIO;
}

const MAX_WRITE = 1 << 20;

export class FuseServer {
  private readonly fd: number;
  private readonly ops: FuseOperations;
  private readonly entryTimeout: number;
  private readonly attrTimeout: number;
  private readonly concurrency: number;
  private readonly maxWrite: number;
  private readonly log: (m: string) => void;
  private readonly free: Buffer[] = [];
  private readonly dirs = new Map<number, DirEntryOut[]>();
  private nextDirFh = 1;
  private stopped = false;
  private pendingReads = 0;
  private resolveClosed!: () => void;
  /** Resolves when the kernel ends the session (unmount) or stop() is called. */
  readonly closed: Promise<void>;
  private resolveInit!: () => void;
  /** Resolves once the kernel's INIT has been answered. */
  readonly initialized: Promise<void>;

  constructor(fd: number, ops: FuseOperations, opts: FuseServerOptions = {}) {
    this.fd = fd;
    this.ops = ops;
    this.entryTimeout = opts.entryTimeout ?? 1;
    this.attrTimeout = opts.attrTimeout ?? 1;
    this.concurrency = opts.concurrency ?? 8;
    this.maxWrite = opts.maxWrite ?? MAX_WRITE;
    this.log = opts.log ?? (() => undefined);
    this.closed = new Promise((r) => (this.resolveClosed = r));
    this.initialized = new Promise((r) => (this.resolveInit = r));
    // The kernel refuses reads into buffers smaller than max_write + one page of headers.
    for (let i = 0; i < this.concurrency; i++) this.free.push(Buffer.alloc(this.maxWrite + 64 * 1024));
  }

  start(): void {
    while (this.free.length > 0) this.readNext();
  }

  /** Stop reading and close the descriptor (the kernel then aborts the connection). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
    this.resolveClosed();
  }

  private readNext(): void {
    if (this.stopped) return;
    const buf = this.free.pop();
    if (!buf) return;
    this.pendingReads++;
    fsRead(this.fd, buf, 0, buf.length, null, (err, n) => {
      this.pendingReads--;
      if (err) {
        this.free.push(buf);
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENODEV' || code === 'EBADF') return this.stop();
        if (code !== 'ENOENT' && code !== 'EINTR' && code !== 'EAGAIN') this.log(`read /dev/fuse: ${code ?? err.message}`);
        setImmediate(() => this.readNext());
        return;
      }
      this.handle(buf, n).finally(() => {
        this.free.push(buf);
        this.readNext();
      });
      // Keep the other buffers busy while this request is served.
      this.readNext();
    });
  }

  private reply(unique: bigint, error: number, payload?: Buffer | Buffer[]): void {
    if (this.stopped) return;
    const parts = payload === undefined ? [] : Array.isArray(payload) ? payload : [payload];
    const len = OUT_HEADER_SIZE + parts.reduce((s, p) => s + p.length, 0);
    const h = Buffer.alloc(OUT_HEADER_SIZE);
    h.writeUInt32LE(len, 0);
    h.writeInt32LE(-error, 4);
    h.writeBigUInt64LE(unique, 8);
    try {
      // A reply is a copy into the kernel's request: it never blocks.
      writevSync(this.fd, [h, ...parts]);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // ENOENT: the request was interrupted and is gone.
      if (code === 'ENODEV' || code === 'EBADF') this.stop();
      else if (code !== 'ENOENT') this.log(`reply failed: ${code}`);
    }
  }

  private async handle(b: Buffer, n: number): Promise<void> {
    let h: InHeader;
    try {
      h = readInHeader(b, n);
    } catch (e) {
      this.log(`bad request: ${(e as Error).message}`);
      return;
    }
    const ctx: RequestContext = { uid: h.uid, gid: h.gid, pid: h.pid };
    try {
      await this.dispatch(h, b.subarray(IN_HEADER_SIZE, n), ctx);
    } catch (e) {
      if (e instanceof ProtocolError) {
        this.log(`bad request (opcode ${h.opcode}): ${e.message}`);
        this.reply(h.unique, E.EIO);
        return;
      }
      this.reply(h.unique, errnoOf(e));
    }
  }

  private need<T>(fn: T | undefined): T {
    if (!fn) throw new FuseErrno(E.ENOSYS);
    return fn;
  }

  private entry(unique: bigint, e: FuseEntry): void {
    this.reply(unique, 0, entryOut(e.nodeid, e.attr, this.entryTimeout, this.attrTimeout));
  }

  private async dispatch(h: InHeader, a: Buffer, ctx: RequestContext): Promise<void> {
    const o = this.ops;
    const id = h.nodeid;
    const u = h.unique;
    const len = a.length;
    switch (h.opcode) {
      case Op.INIT: {
        const major = a.readUInt32LE(0);
        const minor = a.readUInt32LE(4);
        const kflags = a.readUInt32LE(12);
        if (major !== FUSE_KERNEL_VERSION) {
          this.reply(u, E.EPROTO);
          return this.stop();
        }
        const want = InitFlag.ASYNC_READ | InitFlag.BIG_WRITES | InitFlag.ATOMIC_O_TRUNC | InitFlag.MAX_PAGES | InitFlag.PARALLEL_DIROPS | InitFlag.AUTO_INVAL_DATA;
        const out = Buffer.alloc(INIT_OUT_SIZE);
        out.writeUInt32LE(FUSE_KERNEL_VERSION, 0);
        out.writeUInt32LE(Math.min(minor, FUSE_KERNEL_MINOR_VERSION), 4);
        out.writeUInt32LE(this.maxWrite, 8); // max_readahead
        out.writeUInt32LE((kflags & want) >>> 0, 12);
        out.writeUInt16LE(64, 16); // max_background
        out.writeUInt16LE(48, 18); // congestion_threshold
        out.writeUInt32LE(this.maxWrite, 20);
        out.writeUInt32LE(1, 24); // time_gran: ns
        out.writeUInt16LE(this.maxWrite / 4096, 28); // max_pages
        this.reply(u, 0, out);
        this.resolveInit();
        return;
      }
      case Op.DESTROY:
        await o.destroy?.();
        this.reply(u, 0);
        return;
      case Op.FORGET:
        o.forget?.(id, Number(a.readBigUInt64LE(0)));
        return;
      case Op.BATCH_FORGET: {
        const count = a.readUInt32LE(0);
        if (8 + count * 16 > len) throw new ProtocolError('batch forget overruns the request');
        for (let i = 0; i < count; i++) o.forget?.(Number(a.readBigUInt64LE(8 + i * 16)), Number(a.readBigUInt64LE(16 + i * 16)));
        return;
      }
      case Op.INTERRUPT:
        return;
      case Op.LOOKUP:
        return this.entry(u, await o.lookup(id, cstring(a, 0, len).s, ctx));
      case Op.GETATTR:
        this.reply(u, 0, attrOut(await o.getattr(id, ctx), this.attrTimeout));
        return;
      case Op.SETATTR: {
        const valid = a.readUInt32LE(0);
        const c: SetattrChanges = {};
        const now = Date.now();
        if (valid & Fattr.FH) c.fh = Number(a.readBigUInt64LE(8));
        if (valid & Fattr.SIZE) c.size = Number(a.readBigUInt64LE(16));
        if (valid & Fattr.ATIME) c.atimeMs = valid & Fattr.ATIME_NOW ? now : Number(a.readBigInt64LE(32)) * 1000 + a.readUInt32LE(56) / 1e6;
        if (valid & Fattr.MTIME) c.mtimeMs = valid & Fattr.MTIME_NOW ? now : Number(a.readBigInt64LE(40)) * 1000 + a.readUInt32LE(60) / 1e6;
        if (valid & Fattr.MODE) c.mode = a.readUInt32LE(68);
        if (valid & Fattr.UID) c.uid = a.readUInt32LE(76);
        if (valid & Fattr.GID) c.gid = a.readUInt32LE(80);
        this.reply(u, 0, attrOut(await this.need(o.setattr)(id, c, ctx), this.attrTimeout));
        return;
      }
      case Op.READLINK:
        this.reply(u, 0, await this.need(o.readlink)(id, ctx));
        return;
      case Op.SYMLINK: {
        const name = cstring(a, 0, len);
        const target = cstring(a, name.next, len);
        return this.entry(u, await this.need(o.symlink)(id, name.s, target.s, ctx));
      }
      case Op.MKNOD: {
        const mode = a.readUInt32LE(0);
        const rdev = a.readUInt32LE(4);
        const umask = a.readUInt32LE(8);
        return this.entry(u, await this.need(o.mknod)(id, cstring(a, 16, len).s, mode & ~umask, rdev, ctx));
      }
      case Op.MKDIR: {
        const mode = a.readUInt32LE(0);
        const umask = a.readUInt32LE(4);
        return this.entry(u, await this.need(o.mkdir)(id, cstring(a, 8, len).s, mode & ~umask, ctx));
      }
      case Op.UNLINK:
        await this.need(o.unlink)(id, cstring(a, 0, len).s, ctx);
        return this.reply(u, 0);
      case Op.RMDIR:
        await this.need(o.rmdir)(id, cstring(a, 0, len).s, ctx);
        return this.reply(u, 0);
      case Op.RENAME:
      case Op.RENAME2: {
        const newdir = Number(a.readBigUInt64LE(0));
        const flags = h.opcode === Op.RENAME2 ? a.readUInt32LE(8) : 0;
        const start = h.opcode === Op.RENAME2 ? 16 : 8;
        const from = cstring(a, start, len);
        const to = cstring(a, from.next, len);
        await this.need(o.rename)(id, from.s, newdir, to.s, flags, ctx);
        return this.reply(u, 0);
      }
      case Op.LINK:
        return this.entry(u, await this.need(o.link)(Number(a.readBigUInt64LE(0)), id, cstring(a, 8, len).s, ctx));
      case Op.OPEN: {
        const fh = await this.need(o.open)(id, a.readUInt32LE(0), ctx);
        this.reply(u, 0, openOut(fh));
        return;
      }
      case Op.CREATE: {
        const flags = a.readUInt32LE(0);
        const mode = a.readUInt32LE(4);
        const umask = a.readUInt32LE(8);
        const r = await this.need(o.create)(id, cstring(a, 16, len).s, mode & ~umask, flags, ctx);
        this.reply(u, 0, [entryOut(r.entry.nodeid, r.entry.attr, this.entryTimeout, this.attrTimeout), openOut(r.fh)]);
        return;
      }
      case Op.READ: {
        const fh = Number(a.readBigUInt64LE(0));
        const off = Number(a.readBigUInt64LE(8));
        const size = a.readUInt32LE(16);
        this.reply(u, 0, await this.need(o.read)(id, fh, off, size));
        return;
      }
      case Op.WRITE: {
        const fh = Number(a.readBigUInt64LE(0));
        const off = Number(a.readBigUInt64LE(8));
        const size = a.readUInt32LE(16);
        if (40 + size > len) throw new ProtocolError('write data overruns the request');
        const n = await this.need(o.write)(id, fh, off, a.subarray(40, 40 + size));
        const out = Buffer.alloc(8);
        out.writeUInt32LE(n, 0);
        this.reply(u, 0, out);
        return;
      }
      case Op.FLUSH:
        await o.flush?.(id, Number(a.readBigUInt64LE(0)));
        return this.reply(u, 0);
      case Op.RELEASE:
        await o.release?.(id, Number(a.readBigUInt64LE(0)));
        return this.reply(u, 0);
      case Op.FSYNC:
        await o.fsync?.(id, Number(a.readBigUInt64LE(0)), (a.readUInt32LE(8) & 1) === 1);
        return this.reply(u, 0);
      case Op.OPENDIR: {
        const entries = await this.need(o.readdir)(id, ctx);
        const fh = this.nextDirFh++;
        this.dirs.set(fh, [{ name: Buffer.from('.'), ino: id, type: 'dir' }, { name: Buffer.from('..'), ino: 1, type: 'dir' }, ...entries]);
        this.reply(u, 0, openOut(fh));
        return;
      }
      case Op.READDIR: {
        const fh = Number(a.readBigUInt64LE(0));
        const off = Number(a.readBigUInt64LE(8));
        const size = a.readUInt32LE(16);
        const list = this.dirs.get(fh);
        if (!list) throw new FuseErrno(E.EBADF);
        const out = Buffer.alloc(size);
        let used = 0;
        for (let i = off; i < list.length; i++) {
          const d = list[i];
          if (used + direntSize(d.name) > size) break;
          used += writeDirent(out, used, d.ino, i + 1, d.name, d.type);
        }
        this.reply(u, 0, out.subarray(0, used));
        return;
      }
      case Op.RELEASEDIR:
        this.dirs.delete(Number(a.readBigUInt64LE(0)));
        return this.reply(u, 0);
      case Op.FSYNCDIR:
        return this.reply(u, 0);
      case Op.STATFS:
        this.reply(u, 0, statfsOut(await this.need(o.statfs)(id)));
        return;
      case Op.SETXATTR: {
        const size = a.readUInt32LE(0);
        const flags = a.readUInt32LE(4);
        const name = cstring(a, 8, len);
        if (name.next + size > len) throw new ProtocolError('xattr value overruns the request');
        await this.need(o.setxattr)(id, name.s.toString(), a.subarray(name.next, name.next + size), flags);
        return this.reply(u, 0);
      }
      case Op.GETXATTR:
      case Op.LISTXATTR: {
        const size = a.readUInt32LE(0);
        let value: Buffer;
        if (h.opcode === Op.GETXATTR) value = await this.need(o.getxattr)(id, cstring(a, 8, len).s.toString());
        else value = Buffer.from((await this.need(o.listxattr)(id)).map((n) => `${n}\0`).join(''));
        if (size === 0) {
          const out = Buffer.alloc(8);
          out.writeUInt32LE(value.length, 0);
          this.reply(u, 0, out);
        } else if (value.length > size) this.reply(u, E.ERANGE);
        else this.reply(u, 0, value);
        return;
      }
      case Op.REMOVEXATTR:
        await this.need(o.removexattr)(id, cstring(a, 0, len).s.toString());
        return this.reply(u, 0);
      case Op.ACCESS:
        await o.access?.(id, a.readUInt32LE(0), ctx);
        return this.reply(u, 0);
      case Op.FALLOCATE:
        await this.need(o.fallocate)(id, Number(a.readBigUInt64LE(0)), Number(a.readBigUInt64LE(8)), Number(a.readBigUInt64LE(16)), a.readUInt32LE(24));
        return this.reply(u, 0);
      default:
        return this.reply(u, E.ENOSYS);
    }
  }
}
