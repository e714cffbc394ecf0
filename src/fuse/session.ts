/**
 * FuseServer: reads requests from a mounted /dev/fuse descriptor, calls a FuseOperations object and
 * writes the replies. No libfuse, no native code.
 *
 * Threads: each pending read of /dev/fuse blocks one libuv threadpool thread until the kernel has
 * a request, so `readers` reads hold `readers` threads. The launcher must raise UV_THREADPOOL_SIZE
 * in the environment before Node starts (libuv reads it once); by default we use
 * (pool size - 4) readers, at least 1, so the operations' own fs calls keep 4 threads.
 * Replies are written synchronously (one writev per reply): a write to /dev/fuse never waits for
 * anything, and it spares a threadpool round trip.
 *
 * Locks: we do not negotiate POSIX_LOCKS/FLOCK_LOCKS, so the kernel does fcntl/flock locking
 * locally (correct for a single-host mount) and never sends GETLK/SETLK.
 * Interrupts: INTERRUPT is read and ignored; every request still gets its normal reply.
 */
import * as fs from 'node:fs';
import { FuseErrno, toErrno, errnoOf } from './errno.js';
import type { DirEntry, Entry, FuseOperations, OpenResult, RequestContext, SetattrChanges } from './operations.js';
import {
  ENTRY_OUT_SIZE,
  Fattr,
  FopenFlags,
  FSYNC_FDATASYNC,
  FUSE_KERNEL_MINOR_VERSION,
  FUSE_KERNEL_VERSION,
  FuseProtocolError,
  GETATTR_FH,
  InitFlags,
  OUT_HEADER_SIZE,
  Opcode,
  decodeInHeader,
  direntSize,
  encodeAttrOut,
  encodeEntryOut,
  encodeInitOut,
  encodeLseekOut,
  encodeOpenOut,
  encodeStatfsOut,
  encodeWriteOut,
  encodeXattrSizeOut,
  parseRequest,
  writeDirent,
  writeDirentPlus,
  type InitIn,
  type Request,
} from './protocol.js';

export interface FuseServerOptions {
  /** Seconds the kernel may cache names (default 1). */
  entryTimeout?: number;
  /** Seconds the kernel may cache attributes (default 1). */
  attrTimeout?: number;
  /** Seconds the kernel may cache "no such name" (default 0: ENOENT is not cached). */
  negativeTimeout?: number;
  /** Let the kernel buffer writes in the page cache (FUSE_WRITEBACK_CACHE); default off. */
  writebackCache?: boolean;
  /** Answer READDIRPLUS (each listed name is looked up and its attributes sent); default off. */
  readdirplus?: boolean;
  /** Concurrent reads of /dev/fuse; see the module comment. */
  readers?: number;
  /** Largest WRITE the kernel sends (default and maximum 1 MiB). */
  maxWrite?: number;
  /** Called for errors that are not an errno an operation meant to reply (they reply EIO). */
  onError?: (err: unknown, what: string) => void;
  /** Request tracing. */
  debug?: (line: string) => void;
}

export interface ConnectionInfo {
  /** Kernel's protocol version. */
  major: number;
  minor: number;
  /** Flags both sides agreed on (InitFlags bits). */
  flags: number;
  maxWrite: number;
  maxReadahead: number;
}

const MAX_WRITE = 1 << 20;
/** Read buffer: the biggest WRITE plus its headers, with room to spare. */
const BUFFER_SIZE = MAX_WRITE + 64 * 1024;
const S_IFMT = 0o170000;

const ENOSYS = errnoOf('ENOSYS')!;
const ENOENT = errnoOf('ENOENT')!;
const ERANGE = errnoOf('ERANGE')!;
const EPROTO = errnoOf('EPROTO')!;
const EIO = errnoOf('EIO')!;

/** Default number of /dev/fuse readers for this process' threadpool size. */
export function defaultReaders(): number {
  const pool = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  return Math.max(1, Math.min(16, pool - 4));
}

export class FuseServer {
  /** Resolves when the filesystem is unmounted (or the descriptor fails); rejects never. */
  readonly closed: Promise<void>;
  /** Resolves when the kernel's INIT was answered. */
  readonly initialized: Promise<ConnectionInfo>;
  /** Set if the loop stopped on an unexpected error rather than an unmount. */
  closeError: Error | undefined;

  private fd = -1;
  private running = false;
  private readonly opts: Required<Omit<FuseServerOptions, 'debug'>> & Pick<FuseServerOptions, 'debug'>;
  private resolveClosed!: () => void;
  private resolveInit!: (c: ConnectionInfo) => void;
  private readonly free: Buffer[] = [];
  private pending = 0;
  private activeReaders = 0;
  private conn: ConnectionInfo | undefined;

  constructor(
    readonly ops: FuseOperations,
    options: FuseServerOptions = {},
  ) {
    this.opts = {
      entryTimeout: options.entryTimeout ?? 1,
      attrTimeout: options.attrTimeout ?? 1,
      negativeTimeout: options.negativeTimeout ?? 0,
      writebackCache: options.writebackCache ?? false,
      readdirplus: options.readdirplus ?? false,
      readers: options.readers ?? defaultReaders(),
      maxWrite: Math.min(MAX_WRITE, Math.max(4096, options.maxWrite ?? MAX_WRITE)),
      onError: options.onError ?? ((err, what) => console.error(`fuse: ${what}:`, err)),
      debug: options.debug,
    };
    this.closed = new Promise((r) => (this.resolveClosed = r));
    this.initialized = new Promise((r) => (this.resolveInit = r));
  }

  /** Start serving an already mounted /dev/fuse descriptor. */
  serve(fd: number): void {
    if (this.running) throw new Error('FuseServer.serve: already serving');
    this.fd = fd;
    this.running = true;
    for (let i = 0; i < this.opts.readers; i++) this.readLoop();
  }

  /** Requests being handled right now (for tests and shutdown). */
  get inFlight(): number {
    return this.pending;
  }

  get connection(): ConnectionInfo | undefined {
    return this.conn;
  }

  private takeBuffer(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(BUFFER_SIZE);
  }

  private giveBuffer(b: Buffer): void {
    // Keep enough for the readers plus a few in-flight writes; let the rest be collected.
    if (this.free.length < this.opts.readers + 8) this.free.push(b);
  }

  private readLoop(): void {
    if (!this.running) return;
    const buf = this.takeBuffer();
    this.activeReaders++;
    fs.read(this.fd, buf, 0, buf.length, null, (err, n) => {
      this.activeReaders--;
      if (err) {
        this.giveBuffer(buf);
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'EINTR') {
          // The request was interrupted before we read it: just read the next one.
          this.readLoop();
        } else if (code === 'EAGAIN') {
          setTimeout(() => this.readLoop(), 1);
        } else if (code === 'ENODEV') {
          this.finish(); // unmounted
        } else {
          this.finish(err);
        }
        return;
      }
      if (n === 0) {
        this.giveBuffer(buf);
        this.finish();
        return;
      }
      // Keep a read pending while this request is handled.
      this.readLoop();
      this.handle(buf, n);
    });
  }

  private finish(err?: Error): void {
    if (!this.running) return;
    this.running = false;
    if (err) this.closeError = err;
    if (err) this.opts.onError(err, 'reading /dev/fuse');
    // Wait for the other readers' ENODEV before closing the descriptor they read from.
    const done = () => {
      if (this.activeReaders > 0) {
        setTimeout(done, 5);
        return;
      }
      try {
        fs.closeSync(this.fd);
      } catch {
        // already closed
      }
      this.free.length = 0;
      this.resolveClosed();
    };
    done();
  }

  // ---- replies ----

  private reply(unique: bigint, error: number, ...parts: Buffer[]): void {
    let len = OUT_HEADER_SIZE;
    for (const p of parts) len += p.length;
    const h = Buffer.allocUnsafe(OUT_HEADER_SIZE);
    h.writeUInt32LE(len, 0);
    h.writeInt32LE(-error, 4);
    h.writeBigUInt64LE(unique, 8);
    try {
      fs.writevSync(this.fd, [h, ...parts]);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // ENOENT: the request was interrupted and is gone. ENODEV/EBADF: we are unmounted.
      if (code !== 'ENOENT' && code !== 'ENODEV' && code !== 'EBADF') this.opts.onError(e, 'writing a reply');
    }
  }

  private replyError(unique: bigint, err: unknown, what: string): void {
    const { errno, expected } = toErrno(err);
    if (!expected) this.opts.onError(err, what);
    this.reply(unique, errno);
  }

  private entryOut(e: Entry): Buffer {
    return encodeEntryOut(
      e.ino,
      e.generation ?? 0,
      e.entryTimeout ?? this.opts.entryTimeout,
      e.attrTimeout ?? this.opts.attrTimeout,
      e.attr,
    );
  }

  private openOut(o: OpenResult | undefined, isDir: boolean): Buffer {
    let flags = 0;
    if (o?.directIo) flags |= FopenFlags.DIRECT_IO;
    if (o?.keepCache) flags |= FopenFlags.KEEP_CACHE;
    if (o?.nonSeekable) flags |= FopenFlags.NONSEEKABLE;
    if (isDir && o?.cacheDir) flags |= FopenFlags.CACHE_DIR;
    return encodeOpenOut(o?.fh ?? 0, flags);
  }

  // ---- dispatch ----

  private handle(buf: Buffer, n: number): void {
    const data = buf.subarray(0, n);
    let parsed;
    try {
      parsed = parseRequest(data);
    } catch (e) {
      this.giveBuffer(buf);
      let unique: bigint | undefined;
      try {
        unique = decodeInHeader(data).unique;
      } catch {
        // no header to reply to
      }
      this.opts.onError(e, 'parsing a request');
      if (unique !== undefined) this.reply(unique, e instanceof FuseProtocolError ? EIO : EPROTO);
      return;
    }
    const { header, req } = parsed;
    const ctx: RequestContext = { uid: header.uid, gid: header.gid, pid: header.pid, unique: header.unique };
    this.opts.debug?.(`${header.unique} ${typeof req.op === 'number' ? Opcode[req.op] : `op${header.opcode}`} ino=${header.nodeid}`);
    // Only WRITE keeps a view into the read buffer (its data); all else was copied by the parser.
    const holdsBuffer = req.op === Opcode.WRITE;
    if (!holdsBuffer) this.giveBuffer(buf);
    if (req.op === Opcode.SETXATTR) req.value = Buffer.from(req.value);
    this.pending++;
    let p: Promise<void>;
    try {
      p = this.dispatch(header.nodeid, header.unique, req, ctx);
    } catch (e) {
      p = Promise.reject(e);
    }
    p.catch((e) => this.replyError(header.unique, e, typeof req.op === 'number' ? Opcode[req.op] : 'request')).finally(() => {
      this.pending--;
      if (holdsBuffer) this.giveBuffer(buf);
    });
  }

  private async dispatch(ino: number, unique: bigint, req: Request, ctx: RequestContext): Promise<void> {
    const ops = this.ops;
    const ok = (...parts: Buffer[]) => this.reply(unique, 0, ...parts);
    const nosys = () => this.reply(unique, ENOSYS);
    switch (req.op) {
      case Opcode.INIT:
        return this.init(unique, req.arg);
      case Opcode.DESTROY:
        await ops.destroy?.();
        return ok();
      case Opcode.FORGET:
        this.forget(ino, req.nlookup);
        return;
      case Opcode.BATCH_FORGET:
        for (const it of req.items) this.forget(it.nodeid, it.nlookup);
        return;
      case Opcode.INTERRUPT:
        return;
      case Opcode.LOOKUP: {
        if (!ops.lookup) return nosys();
        try {
          return ok(this.entryOut(await ops.lookup(ino, req.name, ctx)));
        } catch (e) {
          if (this.opts.negativeTimeout > 0 && toErrno(e).errno === ENOENT) {
            // nodeid 0 with a timeout: the kernel caches the absence.
            return ok(encodeEntryOut(0, 0, this.opts.negativeTimeout, 0, zeroAttr));
          }
          throw e;
        }
      }
      case Opcode.GETATTR: {
        if (!ops.getattr) return nosys();
        const fh = req.getattrFlags & GETATTR_FH ? req.fh : undefined;
        return ok(encodeAttrOut(this.opts.attrTimeout, await ops.getattr(ino, fh, ctx)));
      }
      case Opcode.SETATTR: {
        if (!ops.setattr) return nosys();
        const a = req.arg;
        const c: SetattrChanges = {};
        if (a.valid & Fattr.MODE) c.mode = a.mode;
        if (a.valid & Fattr.UID) c.uid = a.uid;
        if (a.valid & Fattr.GID) c.gid = a.gid;
        if (a.valid & Fattr.SIZE) c.size = a.size;
        if (a.valid & Fattr.ATIME_NOW) c.atimeMs = 'now';
        else if (a.valid & Fattr.ATIME) c.atimeMs = a.atime * 1000 + a.atimensec / 1e6;
        if (a.valid & Fattr.MTIME_NOW) c.mtimeMs = 'now';
        else if (a.valid & Fattr.MTIME) c.mtimeMs = a.mtime * 1000 + a.mtimensec / 1e6;
        if (a.valid & Fattr.CTIME) c.ctimeMs = a.ctime * 1000 + a.ctimensec / 1e6;
        if (a.valid & Fattr.FH) c.fh = a.fh;
        return ok(encodeAttrOut(this.opts.attrTimeout, await ops.setattr(ino, c, ctx)));
      }
      case Opcode.READLINK: {
        if (!ops.readlink) return nosys();
        const t = await ops.readlink(ino, ctx);
        return ok(typeof t === 'string' ? Buffer.from(t) : t);
      }
      case Opcode.SYMLINK:
        if (!ops.symlink) return nosys();
        return ok(this.entryOut(await ops.symlink(ino, req.name, req.target, ctx)));
      case Opcode.MKNOD:
        if (!ops.mknod) return nosys();
        return ok(this.entryOut(await ops.mknod(ino, req.name, req.mode, req.rdev, ctx)));
      case Opcode.MKDIR:
        if (!ops.mkdir) return nosys();
        return ok(this.entryOut(await ops.mkdir(ino, req.name, req.mode, ctx)));
      case Opcode.UNLINK:
        if (!ops.unlink) return nosys();
        await ops.unlink(ino, req.name, ctx);
        return ok();
      case Opcode.RMDIR:
        if (!ops.rmdir) return nosys();
        await ops.rmdir(ino, req.name, ctx);
        return ok();
      case Opcode.RENAME:
        if (!ops.rename) return nosys();
        await ops.rename(ino, req.name, req.newdir, req.newname, req.flags, ctx);
        return ok();
      case Opcode.LINK:
        if (!ops.link) return nosys();
        return ok(this.entryOut(await ops.link(req.oldnodeid, ino, req.name, ctx)));
      case Opcode.OPEN:
        return ok(this.openOut(ops.open ? await ops.open(ino, req.flags, ctx) : undefined, false));
      case Opcode.OPENDIR:
        return ok(this.openOut(ops.opendir ? await ops.opendir(ino, req.flags, ctx) : undefined, true));
      case Opcode.READ: {
        if (!ops.read) return nosys();
        const { fh, offset, size } = req.arg;
        const data = await ops.read(ino, fh, offset, size, ctx);
        return ok(data.length > size ? data.subarray(0, size) : data);
      }
      case Opcode.WRITE: {
        if (!ops.write) return nosys();
        const { fh, offset, data } = req.arg;
        return ok(encodeWriteOut(await ops.write(ino, fh, offset, data, ctx)));
      }
      case Opcode.FLUSH:
        if (!ops.flush) return nosys();
        await ops.flush(ino, req.fh, req.lockOwner, ctx);
        return ok();
      case Opcode.RELEASE:
        await ops.release?.(ino, req.fh, req.flags, ctx);
        return ok();
      case Opcode.FSYNC:
        if (!ops.fsync) return nosys();
        await ops.fsync(ino, req.fh, (req.fsyncFlags & FSYNC_FDATASYNC) !== 0, ctx);
        return ok();
      case Opcode.READDIR:
      case Opcode.READDIRPLUS:
        if (!ops.readdir) return nosys();
        return ok(await this.readdir(ino, req.arg.fh, req.arg.offset, req.arg.size, req.op === Opcode.READDIRPLUS, ctx));
      case Opcode.RELEASEDIR:
        await ops.releasedir?.(ino, req.fh, ctx);
        return ok();
      case Opcode.FSYNCDIR:
        if (!ops.fsyncdir) return nosys();
        await ops.fsyncdir(ino, req.fh, (req.fsyncFlags & FSYNC_FDATASYNC) !== 0, ctx);
        return ok();
      case Opcode.STATFS: {
        const s = ops.statfs
          ? await ops.statfs(ino, ctx)
          : { blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, bsize: 512, namelen: 255 };
        return ok(encodeStatfsOut(s));
      }
      case Opcode.SETXATTR:
        if (!ops.setxattr) return nosys();
        await ops.setxattr(ino, req.name, req.value, req.flags, ctx);
        return ok();
      case Opcode.GETXATTR: {
        if (!ops.getxattr) return nosys();
        const v = await ops.getxattr(ino, req.name, ctx);
        if (req.size === 0) return ok(encodeXattrSizeOut(v.length));
        if (v.length > req.size) return this.reply(unique, ERANGE);
        return ok(v);
      }
      case Opcode.LISTXATTR: {
        if (!ops.listxattr) return nosys();
        const names = await ops.listxattr(ino, ctx);
        const v = Buffer.from(names.map((s) => s + '\0').join(''));
        if (req.size === 0) return ok(encodeXattrSizeOut(v.length));
        if (v.length > req.size) return this.reply(unique, ERANGE);
        return ok(v);
      }
      case Opcode.REMOVEXATTR:
        if (!ops.removexattr) return nosys();
        await ops.removexattr(ino, req.name, ctx);
        return ok();
      case Opcode.ACCESS:
        if (!ops.access) return nosys();
        await ops.access(ino, req.mask, ctx);
        return ok();
      case Opcode.CREATE: {
        if (!ops.create) return nosys();
        const r = await ops.create(ino, req.name, req.mode, req.flags, ctx);
        return ok(this.entryOut(r.entry), this.openOut(r.open, false));
      }
      case Opcode.FALLOCATE:
        if (!ops.fallocate) return nosys();
        await ops.fallocate(ino, req.fh, req.offset, req.length, req.mode, ctx);
        return ok();
      case Opcode.LSEEK:
        if (!ops.lseek) return nosys();
        return ok(encodeLseekOut(await ops.lseek(ino, req.fh, req.offset, req.whence, ctx)));
      default:
        // Locks (not negotiated), ioctl, poll, bmap, copy_file_range, unknown opcodes.
        return nosys();
    }
  }

  private forget(ino: number, nlookup: number): void {
    try {
      this.ops.forget?.(ino, nlookup);
    } catch (e) {
      this.opts.onError(e, 'forget');
    }
  }

  private async init(unique: bigint, arg: InitIn): Promise<void> {
    if (arg.major < FUSE_KERNEL_VERSION) {
      this.opts.onError(new Error(`kernel FUSE protocol ${arg.major}.${arg.minor} is too old`), 'INIT');
      return this.reply(unique, EPROTO);
    }
    if (arg.major > FUSE_KERNEL_VERSION) {
      // Tell the kernel our major; it retries INIT with it.
      const b = Buffer.alloc(8);
      b.writeUInt32LE(FUSE_KERNEL_VERSION, 0);
      b.writeUInt32LE(FUSE_KERNEL_MINOR_VERSION, 4);
      return this.reply(unique, 0, b);
    }
    let want =
      InitFlags.ASYNC_READ |
      InitFlags.BIG_WRITES |
      InitFlags.ATOMIC_O_TRUNC |
      InitFlags.MAX_PAGES |
      InitFlags.PARALLEL_DIROPS |
      InitFlags.AUTO_INVAL_DATA |
      InitFlags.ASYNC_DIO;
    if (this.opts.writebackCache) want |= InitFlags.WRITEBACK_CACHE;
    if (this.opts.readdirplus && this.ops.readdir && this.ops.lookup) want |= InitFlags.DO_READDIRPLUS;
    const flags = (arg.flags & want) >>> 0;
    await this.ops.init?.();
    const maxWrite = this.opts.maxWrite;
    this.conn = { major: arg.major, minor: arg.minor, flags, maxWrite, maxReadahead: arg.maxReadahead };
    this.reply(
      unique,
      0,
      encodeInitOut({
        major: FUSE_KERNEL_VERSION,
        minor: FUSE_KERNEL_MINOR_VERSION,
        maxReadahead: arg.maxReadahead,
        flags,
        maxBackground: 64,
        congestionThreshold: 48,
        maxWrite,
        timeGran: 1,
        maxPages: Math.ceil(maxWrite / 4096),
      }),
    );
    this.resolveInit(this.conn);
  }

  private async readdir(
    ino: number,
    fh: number,
    offset: number,
    size: number,
    plus: boolean,
    ctx: RequestContext,
  ): Promise<Buffer> {
    const entries: DirEntry[] = await this.ops.readdir!(ino, fh, offset, size, ctx);
    const out = Buffer.alloc(size);
    let pos = 0;
    for (let i = 0; i < entries.length; i++) {
      const d = entries[i];
      const name = typeof d.name === 'string' ? Buffer.from(d.name) : d.name;
      const off = d.offset ?? offset + i + 1;
      const type = (d.mode & S_IFMT) >>> 12;
      let next: number;
      if (!plus) {
        next = writeDirent(out, pos, d.ino, off, type, name);
      } else {
        // Check the fit first: a looked-up entry that is not sent would leak a lookup count.
        if (pos + ENTRY_OUT_SIZE + direntSize(name.length) > out.length) break;
        let entry: Entry | null = null;
        // The kernel skips "." and ".." without counting a lookup, so neither do we.
        if (!isDotOrDotDot(name)) {
          try {
            entry = await this.ops.lookup!(ino, name, ctx);
          } catch {
            entry = null; // vanished meanwhile: send the name only
          }
        }
        next = writeDirentPlus(
          out,
          pos,
          entry && {
            nodeid: entry.ino,
            generation: entry.generation ?? 0,
            entryTimeout: entry.entryTimeout ?? this.opts.entryTimeout,
            attrTimeout: entry.attrTimeout ?? this.opts.attrTimeout,
            attr: entry.attr,
          },
          d.ino,
          off,
          type,
          name,
        );
      }
      if (next < 0) break;
      pos = next;
    }
    return out.subarray(0, pos);
  }
}

function isDotOrDotDot(n: Buffer): boolean {
  return (n.length === 1 && n[0] === 0x2e) || (n.length === 2 && n[0] === 0x2e && n[1] === 0x2e);
}

const zeroAttr = { ino: 0, mode: 0, nlink: 0, uid: 0, gid: 0, size: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0 };

export { FuseErrno };
