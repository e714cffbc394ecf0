/** Open files (one lower descriptor per inode, shared by its handles), create, read, write, setattr. */
import * as nodefs from 'node:fs';
import { constants as C } from 'node:fs';
import { constants as OSC } from 'node:os';
import { isEcryptfsError } from '../../errors.js';
import { FdLowerFile, isDir, openFileAt, type LowerStat } from '../../lower/at.js';
import { asCaller, callerCreds, groupsOf, withUmask, type Creds } from '../../lower/creds.js';
import * as sys from '../../lower/sys.js';
import { EcryptfsFile, XATTR_NAME } from '../../volume/file.js';
import { pageAlignedBuffer } from '../../sys/libc.js';
import { ErrnoError } from './errno.js';
import { headerFromXattr } from './encrypted-view.js';
import { type Attr, type Caller, type Entry, type OpenState } from './types.js';

import { FsDirOps } from './dir-ops.js';

const E = OSC.errno;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;
const S_IXGRP = 0o010;

/**
 * READ and WRITE requests up to these sizes are served on the main thread without a promise
 * (EcryptfsFile.readNow/writeNow), so the FUSE server stays in its blocking-read loop: each
 * thread-pool or event-loop hop costs far more than a 4 KiB read and decrypt. Larger READs
 * (the kernel's readahead, several in flight) go to the asynchronous path, where the lower
 * reads of the next ones run on pool threads while this one is decrypted: sequential reads of
 * 128 MiB, 10 interleaved rounds at load ~10, medians 351 -> 417 MB/s on disk and 467 -> 623
 * on tmpfs against all on this thread. A WRITE waits for its reply (one in flight per writer), so
 * there is nothing to overlap: on this thread it costs ~30% less CPU.
 */
const SYNC_READ_MAX = Number(process.env.ECRYPTFS_SYNC_READ_MAX ?? 64 * 1024);
const SYNC_WRITE_MAX = Number(process.env.ECRYPTFS_SYNC_WRITE_MAX ?? 1 << 20);
/**
 * ...except while several processes do I/O at once (data requests of different callers within
 * CONCURRENT_MS): served one by one on the main thread their disk waits and crypto would queue
 * behind each other, so for HOLD_MS they take the asynchronous path, which overlaps them in the
 * thread pool and the crypto workers (measured: 8 dd at once on disk, 64 MiB each, fell from
 * ~390 to ~240 MB/s writing and from ~700 to ~290 MB/s reading cold without this).
 */
const CONCURRENT_MS = 20;
/**
 * Size of the reused buffers of asynchronous READs (FUSE's largest READ), and how many there are
 * at most (the 4 MiB readahead keeps up to two windows of four 1 MiB READs in flight per reader).
 * Daemon CPU per MiB of cold sequential read on tmpfs, 3 interleaved rounds at load ~11: none
 * reused 705-844 us, 4 598-689, 8 533-583. A READ finding none free waits for one (readDone):
 * before, 8 were kept and the rest, up to the kernel's 64 background requests, made anew and left
 * to the garbage collector, which lets external memory grow by tens of MiB before it runs; 8
 * readers at once raised the daemon's peak RSS by ~50-60 MiB (8 x 64 MiB written then read at
 * once, lower on disk: peak 158-223 MiB, now 111; with 8 buffers 102-104, but one reader read
 * slower: 128 MiB cold, 6 runs, medians 944 MB/s with 8, 1,575 with 16, 1,120 with 64).
 */
const READ_BUFFER = 1 << 20;
export const READ_BUFFERS_MAX = 16;
const HOLD_MS = 500;

/** A READ buffer: page-aligned, so the lower file may read into it with O_DIRECT (FdLowerFile). */
function readBuffer(): Buffer {
  try {
    return pageAlignedBuffer(READ_BUFFER);
  } catch {
    return Buffer.allocUnsafeSlow(READ_BUFFER);
  }
}

export class FsFileOps extends FsDirOps {
  /** The last data request's caller and time, and until when requests take the asynchronous path. */
  private lastPid = 0;
  private lastAt = 0;
  private parallelUntil = 0;

  /** Whether this data request may be served on the main thread (see HOLD_MS). */
  protected inline(ctx: Caller | undefined): boolean {
    const now = performance.now();
    const pid = ctx?.pid ?? 0;
    if (pid !== this.lastPid) {
      if (now - this.lastAt < CONCURRENT_MS) this.parallelUntil = now + HOLD_MS;
      this.lastPid = pid;
    }
    this.lastAt = now;
    return now >= this.parallelUntil;
  }

  /**
   * FUSE_HANDLE_KILLPRIV_V2: for a caller without CAP_FSETID, what the lower filesystem does on a
   * write or truncate (the daemon writes with its own rights on a shared descriptor, so it would
   * not): the setuid bit goes, and the setgid bit when group-executable or when the caller is not
   * in the file's group. `chmod` runs with the daemon's rights on the node's own inode: a group
   * member may write another user's setuid file but not chmod it. The file capability is the
   * kernel's: it still asks for security.capability and removes it (REMOVEXATTR).
   */
  protected killSuidgid(st: LowerStat, chmod: (mode: number) => void, ctx: Caller): boolean {
    const mode = st.mode & 0o7777;
    let clear = mode & S_ISUID;
    if (mode & S_ISGID && (mode & S_IXGRP || (ctx.gid !== st.gid && !groupsOf(ctx.pid).includes(st.gid)))) clear |= S_ISGID;
    if (!clear) return false;
    chmod(mode & ~clear);
    return true;
  }

  /**
   * The data of `nodeid` changed by a request without its own clearing (truncate, FALLOCATE, which
   * the kernel leaves to us unmarked): setuid/setgid as for a write (killSuidgid).
   */
  dataModified(nodeid: number, ctx: Caller): void {
    const n = this.node(nodeid);
    if (this.onNode(n, undefined, (fd, st) => this.killSuidgid(st ?? sys.fstat(fd), (m) => nodefs.chmodSync(sys.fdPath(fd), m), ctx))) ctx.attrsChanged = true;
  }

  async setattr(
    nodeid: number,
    a: {
      mode?: number; uid?: number; gid?: number; size?: number; fh?: number;
      atimeMs?: number | 'now'; mtimeMs?: number | 'now';
      /** Exact times; taken over the *Ms fields when given. */
      atimeNs?: bigint | 'now'; mtimeNs?: bigint | 'now';
    },
    ctx?: Caller,
  ): Promise<Attr> {
    this.writable();
    const n = this.node(nodeid);
    const cr = callerCreds(ctx);
    if (a.size !== undefined) {
      if (isDir(n.type)) throw new ErrnoError(E.EISDIR);
      if (a.size > this.maxSize) throw new ErrnoError(E.EFBIG);
      await this.withFile(nodeid, true, cr, (f) => f.truncate(a.size!, this.vol.keys, this.vol.newFileParams(), this.stopper(ctx)));
      // Before any mode change of this request: an explicit mode wins. The reply carries the result.
      if (ctx?.killSuidgid) this.dataModified(nodeid, ctx);
    }
    if (a.mode !== undefined) {
      const mode = a.mode & 0o7777;
      this.onNode(n, cr, (fd) => nodefs.chmodSync(sys.fdPath(fd), mode));
    }
    if (a.uid !== undefined || a.gid !== undefined) {
      this.onNode(n, cr, (fd) => sys.fchownat(fd, '', a.uid ?? -1, a.gid ?? -1, sys.AT_EMPTY_PATH));
    }
    if (a.atimeMs !== undefined || a.mtimeMs !== undefined || a.atimeNs !== undefined || a.mtimeNs !== undefined) {
      const ns = (t: number | 'now' | undefined) => (t === undefined || t === 'now' ? t : BigInt(Math.round(t * 1e6)));
      const at = a.atimeNs ?? ns(a.atimeMs);
      const mt = a.mtimeNs ?? ns(a.mtimeMs);
      this.onNode(n, cr, (fd) => sys.utimensat(sys.AT_FDCWD, sys.fdPath(fd), at, mt, 0));
    }
    return this.getattr(nodeid, ctx);
  }

  protected async acquire(nodeid: number, write: boolean, cr: Creds | undefined): Promise<OpenState> {
    let s = this.open.get(nodeid);
    if (s && write && !s.writable) {
      // Reopen read-write (the shared lower file must serve every handle).
      const { file, fh } = await this.openLower(nodeid, true, cr);
      // New requests take the new file at once; the old one closes after its reads in progress.
      const old = s.file;
      s.file = file;
      s.fh = fh;
      s.writable = true;
      await old.close();
    }
    if (!s) {
      const uid = cr?.uid ?? 0;
      this.charge(uid, 1);
      try {
        let writable = !this.readOnly;
        let o: { file: EcryptfsFile; fh: FdLowerFile };
        try {
          o = await this.openLower(nodeid, writable, cr);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (write || (code !== 'EACCES' && code !== 'EROFS' && code !== 'EPERM')) throw e;
          writable = false;
          o = await this.openLower(nodeid, false, cr);
        }
        s = { file: o.file, fh: o.fh, refs: 0, writable, uid };
        this.open.set(nodeid, s);
      } catch (e) {
        this.charge(uid, -1);
        throw e;
      }
    }
    s.refs++;
    return s;
  }

  protected async openLower(nodeid: number, write: boolean, cr: Creds | undefined): Promise<{ file: EcryptfsFile; fh: FdLowerFile }> {
    const n = this.node(nodeid);
    const { fd } = asCaller(cr, () => openFileAt(this.dirFd(n.parent), n.name, write ? C.O_RDWR : C.O_RDONLY, 0, n));
    const fh = new FdLowerFile(fd, this.syncIoMax, this.lazyLabel(n.parent, n.name));
    try {
      return { file: await EcryptfsFile.openHandle(fh, this.vol.keys, { writable: write, passthrough: this.vol.passthrough || this.encryptedView, xattrMetadata: true }), fh };
    } catch (e) {
      if (isEcryptfsError(e)) {
        this.log(`${fh.label}: ${e.message}`);
        throw new ErrnoError(E.EIO, e.message);
      }
      throw e;
    }
  }

  /** Drop one reference; the last closes the lower file (at once unless I/O is in progress). */
  protected release0(nodeid: number): void | Promise<void> {
    const s = this.open.get(nodeid);
    if (!s) return;
    if (--s.refs > 0) return;
    this.open.delete(nodeid);
    this.charge(s.uid, -1);
    this.keepClearSize(s);
    const after = () => {
      const n = this.nodes.get(nodeid);
      if (n && n.nlookup <= 0) this.forget(nodeid, 0);
    };
    if (s.file.closeIfIdle()) return after();
    return s.file.close().then(after);
  }

  /**
   * The clear size of a file being closed, kept for the next lookup or getattr (peekSize), which
   * would otherwise open the lower file and read its header again (`ls -l`, `rm` after a create).
   */
  protected keepClearSize(s: OpenState): void {
    if (s.file.kind !== 'encrypted' || this.encryptedView) return;
    let st: LowerStat;
    try {
      st = s.fh.lstat();
    } catch {
      return;
    }
    this.clearSizes.set(this.inodeKey(st.dev, st.ino), st.size, st.ctimeNs, s.file.size);
  }

  protected async withFile<T>(nodeid: number, write: boolean, cr: Creds | undefined, fn: (f: EcryptfsFile) => Promise<T>): Promise<T> {
    const s = await this.acquire(nodeid, write, cr);
    try {
      return await fn(s.file);
    } finally {
      await this.release0(nodeid);
    }
  }

  /** Open: returns a handle. flags are open(2) flags. */
  async openFile(nodeid: number, flags: number, ctx?: Caller): Promise<number> {
    const acc = flags & 3;
    const write = acc === C.O_WRONLY || acc === C.O_RDWR;
    if (write) this.writable();
    const s = await this.acquire(nodeid, write, callerCreds(ctx));
    try {
      if (write && flags & C.O_TRUNC) {
        await s.file.truncate(0, this.vol.keys, this.vol.newFileParams());
        if (ctx?.killSuidgid && this.killSuidgid(s.fh.lstat(), (m) => sys.fchmod(s.fh.fd, m), ctx)) ctx.attrsChanged = true;
      }
    } catch (e) {
      await this.release0(nodeid);
      throw e;
    }
    const fh = this.nextHandle++;
    this.handles.set(fh, { nodeid, append: !!(flags & C.O_APPEND) });
    return fh;
  }

  async create(parent: number, name: string | Buffer, mode: number, flags: number, ctx?: Caller): Promise<{ entry: Entry; fh: number }> {
    return this.createSync(parent, name, mode, flags, ctx);
  }

  /**
   * create, answered without a promise when the name is new (the lower create, header write and
   * key set-up are synchronous calls on a local descriptor): the FUSE server replies in the same turn.
   */
  createSync(parent: number, name: string | Buffer, mode: number, flags: number, ctx?: Caller): { entry: Entry; fh: number } | Promise<{ entry: Entry; fh: number }> {
    this.writable();
    const lowerName = this.encode(name);
    const cr = callerCreds(ctx);
    const uid = cr?.uid ?? 0;
    let fd: number;
    let st: LowerStat;
    try {
      ({ fd, st } = asCaller(cr, () => withUmask(ctx?.umask, () => openFileAt(this.dirFd(parent), lowerName, C.O_RDWR | C.O_CREAT | C.O_EXCL, mode & 0o7777))));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && !(flags & C.O_EXCL)) {
        return (async () => {
          const entry = await this.lookup(parent, name, ctx);
          const fh = await this.openFile(entry.nodeid, flags, ctx);
          // setuid/setgid cleared by the O_TRUNC open: the reply's attributes must say so.
          if (ctx?.attrsChanged) entry.attr = this.getattrSync(entry.nodeid, ctx);
          return { entry, fh };
        })();
      }
      throw e;
    }
    const fh = new FdLowerFile(fd, this.syncIoMax, this.lazyLabel(parent, lowerName));
    let file: EcryptfsFile;
    try {
      this.charge(uid, 1);
    } catch (e) {
      fh.close().catch(() => undefined);
      this.removeIfSame(parent, lowerName, st, cr);
      throw e;
    }
    try {
      file = EcryptfsFile.createHandleSync(fh, this.vol.keys, this.vol.newFileParams());
    } catch (e) {
      this.charge(uid, -1);
      this.removeIfSame(parent, lowerName, st, cr);
      throw e;
    }
    const n = this.remember(parent, lowerName, st);
    // A new inode has no file capability: the kernel asks before every write; answer from the node.
    n.cap = null;
    const old = this.open.get(n.nodeid);
    if (old) {
      this.charge(old.uid, -1);
      if (!old.file.closeIfIdle()) old.file.close().catch(() => undefined);
    }
    // Open before its attributes: the size is the open file's (0), not read back from the header.
    this.open.set(n.nodeid, { file, fh, refs: 1, writable: true, uid });
    const entry = { nodeid: n.nodeid, attr: this.attrOf(n, st, cr) };
    const h = this.nextHandle++;
    this.handles.set(h, { nodeid: n.nodeid, append: !!(flags & C.O_APPEND) });
    return { entry, fh: h };
  }

  /** label(), built when first asked for; the name alone if the directory's node is gone by then. */
  protected lazyLabel(parent: number, name: Buffer): () => string {
    return () => {
      try {
        return this.label(parent, name);
      } catch {
        return `${this.vol.lower.root}/…/${name.toString('utf8')}`;
      }
    };
  }

  /** Undo a create that failed after the lower file was made, if the name is still that file. */
  protected removeIfSame(parent: number, name: Buffer, st: LowerStat, cr: Creds | undefined): void {
    try {
      asCaller(cr, () => {
        const now = sys.fstatat(this.dirFd(parent), name);
        if (now.dev === st.dev && now.ino === st.ino) sys.unlinkat(this.dirFd(parent), name, 0);
      });
    } catch {
      // gone already
    }
  }

  protected handle(fh: number): { nodeid: number; append: boolean; state: OpenState } {
    const state = this.openState(fh);
    return { ...this.handles.get(fh)!, state };
  }

  /** handle(fh).state without the object handle() builds (a READ's only garbage in this layer). */
  protected openState(fh: number): OpenState {
    const h = this.handles.get(fh);
    const state = h && this.open.get(h.nodeid);
    if (!state) throw new ErrnoError(E.EBADF);
    return state;
  }

  /** A file layer error as the errno the caller gets (the details go to the log). */
  protected fileError(e: unknown): unknown {
    if (!isEcryptfsError(e)) return e;
    this.log(e.message);
    return new ErrnoError(E.EIO);
  }

  /** The clear bytes; synchronously when the file can answer at once (see SYNC_READ_MAX). */
  read(fh: number, offset: number, size: number, ctx?: Caller): Buffer | Promise<Buffer> {
    return this.readAt(fh, offset, size, ctx, undefined);
  }

  /**
   * read() for a FUSE server that writes each answer before it reads the next request and calls
   * readDone with it once written: an answer given synchronously is a view into one reused buffer
   * of this filesystem (valid until the next readReply), so a 4 KiB READ allocates nothing
   * (EcryptfsFile.readNow); a larger one is read into a buffer from a small free list that readDone
   * refills, instead of a new 1 MiB buffer per readahead READ (its allocation and page faults, and
   * the garbage collections that the external memory of hundreds of them brings on).
   */
  readReply(fh: number, offset: number, size: number, ctx?: Caller): Buffer | Promise<Buffer> {
    return this.readAt(fh, offset, size, ctx, this.replyScratch);
  }

  /** The FUSE server wrote the answer `data`: a buffer of the free list goes back to it. */
  readDone(data: Buffer): void {
    const ab = data.buffer;
    if (!this.ownReadBuffers.has(ab)) return;
    const b = Buffer.from(ab, 0, READ_BUFFER);
    const waiter = this.readWaiters.shift();
    if (waiter) waiter(b);
    else this.readBuffers.push(b);
  }

  /** A free READ buffer, a new one while fewer than READ_BUFFERS_MAX exist, else the next one readDone gives back. */
  private takeReadBuffer(): Buffer | Promise<Buffer> {
    const free = this.readBuffers.pop();
    if (free) return free;
    if (this.readBuffersMade < READ_BUFFERS_MAX) {
      this.readBuffersMade++;
      const b = readBuffer();
      this.ownReadBuffers.add(b.buffer);
      return b;
    }
    return new Promise((resolve) => this.readWaiters.push(resolve));
  }

  /** SYNC_READ_MAX plus the partial extents at either end (extents are 4 KiB; larger ones go without). */
  private readonly replyScratch = Buffer.allocUnsafeSlow(SYNC_READ_MAX + 2 * 4096);
  /** Buffers for asynchronous READs (the kernel asks for at most max_pages, 1 MiB), and which are ours. */
  private readonly readBuffers: Buffer[] = [];
  private readonly ownReadBuffers = new WeakSet<ArrayBufferLike>();
  private readBuffersMade = 0;
  /** READs waiting for a buffer (all READ_BUFFERS_MAX in use), first come first served. */
  private readonly readWaiters: ((b: Buffer) => void)[] = [];

  private readAt(fh: number, offset: number, size: number, ctx: Caller | undefined, scratch: Buffer | undefined): Buffer | Promise<Buffer> {
    try {
      const state = this.openState(fh);
      if (this.encryptedView) return this.readEncryptedView(state, offset, size);
      const inline = this.inline(ctx);
      const now = inline ? state.file.readNow(offset, size, SYNC_READ_MAX, scratch) : undefined;
      if (now) return now;
      // Several processes at once: large lower reads skip the lower page cache (FdLowerFile.direct).
      state.fh.directReads = !inline;
      if (!scratch || size > READ_BUFFER) return state.file.read(offset, size).catch((e: unknown) => Promise.reject(this.fileError(e)));
      const buf = this.takeReadBuffer();
      // After a wait the handle is looked up again (its file may have been reopened read-write).
      if (buf instanceof Promise) return buf.then((b) => this.readIntoBuffer(b, fh, offset, size));
      return this.readIntoBuffer(buf, fh, offset, size, state);
    } catch (e) {
      return Promise.reject(this.fileError(e));
    }
  }

  /** The asynchronous READ into `b`, one of the READ buffers, which a failure gives back. */
  private readIntoBuffer(b: Buffer, fh: number, offset: number, size: number, state?: OpenState): Promise<Buffer> {
    const fail = (e: unknown) => {
      this.readDone(b);
      return Promise.reject(this.fileError(e));
    };
    try {
      return (state ?? this.openState(fh)).file.readInto(b.subarray(0, size), offset).then((n) => b.subarray(0, n), fail);
    } catch (e) {
      return fail(e);
    }
  }

  /** ecryptfs_encrypted_view: the lower bytes, with a header built from the xattr when there is one. */
  protected async readEncryptedView(state: OpenState, offset: number, size: number): Promise<Buffer> {
    const x = await state.fh.getxattr(XATTR_NAME).catch(() => undefined);
    const head = x ? headerFromXattr(x) : Buffer.alloc(0);
    const total = head.length + state.fh.lstat().size;
    const end = Math.min(total, offset + size);
    if (offset >= end) return Buffer.alloc(0);
    const out = Buffer.alloc(end - offset);
    let o = 0;
    if (offset < head.length) o = head.copy(out, 0, offset, Math.min(head.length, end));
    const lowerStart = Math.max(0, offset - head.length);
    if (o < out.length) await state.fh.read(out, o, out.length - o, lowerStart);
    return out;
  }

  /** Bytes written; synchronously when the file can take them at once (see SYNC_WRITE_MAX). */
  write(fh: number, offset: number, data: Buffer, ctx?: Caller): number | Promise<number> {
    try {
      this.writable();
      const { state, append } = this.handle(fh);
      if (!state.writable) throw new ErrnoError(E.EBADF);
      const pos = append ? state.file.size : offset;
      if (pos + data.length > this.maxSize) throw new ErrnoError(E.EFBIG);
      // Before the data, as the kernel does (one fstat per write of a caller without CAP_FSETID).
      if (ctx?.killSuidgid && this.killSuidgid(state.fh.lstat(), (m) => sys.fchmod(state.fh.fd, m), ctx)) ctx.attrsChanged = true;
      return (this.inline(ctx) ? state.file.writeNow(pos, data, SYNC_WRITE_MAX) : undefined)
        ?? state.file.write(pos, data, this.vol.keys, this.vol.newFileParams(), false, this.stopper(ctx)).catch((e: unknown) => Promise.reject(this.fileError(e)));
    } catch (e) {
      return Promise.reject(this.fileError(e));
    }
  }

  async fsync(fh: number): Promise<void> {
    const { state } = this.handle(fh);
    if (state.writable) await state.file.sync();
  }

  /** Release a handle: without a promise unless the lower file still has I/O in progress. */
  release(fh: number): void | Promise<void> {
    const h = this.handles.get(fh);
    if (!h) return;
    this.handles.delete(fh);
    return this.release0(h.nodeid);
  }

  /** Close every open file and lower descriptor (unmount). */
  async closeAll(): Promise<void> {
    for (const s of this.open.values()) await s.file.close().catch(() => undefined);
    this.open.clear();
    this.handles.clear();
    for (const d of this.dirStreams.values()) d.stream.close();
    this.dirStreams.clear();
    this.fdsByUid.clear();
    this.dirs.clear();
    this.prefetch.close();
  }
}
