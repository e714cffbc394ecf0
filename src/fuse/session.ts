/**
 * FuseServer: reads requests from a mounted /dev/fuse descriptor, calls a FuseOperations object and
 * writes the replies. No libfuse, no native code.
 *
 * How requests are read (measured with test/fuse/memfs, see bench/fuselat.ts):
 * - While every operation answers synchronously (returns a value, not a promise), the main thread
 *   reads /dev/fuse itself with blocking reads and replies in the same loop, like a
 *   single-threaded libfuse: the kernel wakes this thread directly, with no threadpool hop and no
 *   event-loop turn per request.
 * - As soon as an operation returns a promise, the server yields to the event loop (setImmediate,
 *   so promises that settle at once still keep it in this mode) and, if work is really pending,
 *   falls back to reads on the libuv threadpool: `readers` of them at once while operations are
 *   pending, one while idle. When a pooled read delivers a request that is answered
 *   synchronously and nothing else is pending, it goes back to blocking reads.
 * - A blocking read would keep timers, signals (SIGTERM) and IPC from ever running on an idle
 *   mount, so a small worker thread watches: when the main thread has been blocked for `idleMs`
 *   without a request, it calls statfs(2) on the mount point (`wakePath`): the kernel sends us
 *   a STATFS from that thread (known by its thread id), which wakes the main thread; it is
 *   answered at once and the main thread returns to the event loop with one pooled read pending.
 *   (The kernel's own wake-up, NOTIFY_RETRIEVE, only works on regular files since Linux 6.x.)
 *   Without `wakePath` blocking reads are never used.
 * The launcher must raise UV_THREADPOOL_SIZE before Node starts (libuv reads it once); by default
 * we use (pool size - 4) readers, at least 1, so the operations' own fs calls keep 4 threads.
 * Replies are written synchronously (one writev per reply): a write to /dev/fuse never waits.
 *
 * Locks: we do not negotiate POSIX_LOCKS/FLOCK_LOCKS, so the kernel does fcntl/flock locking
 * locally (correct for a single-host mount) and never sends GETLK/SETLK.
 * Interrupts: INTERRUPT marks the target request's context (ctx.interrupted) for long operations to
 * poll; every request still gets its own reply (EINTR when it stopped early).
 * FUSE_STATS=1 (or the `stats` option) prints a per-opcode table of server time at close;
 * FUSE_STATS=/path appends it to that file.
 */
import * as fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { S_IFMT } from '../lower/mode.js';
import { readableNow } from '../sys/libc.js';
import { CpuPressure } from '../sys/pressure.js';
import { SpinGate } from './spin-gate.js';
import { SpinChoice } from './spin-choice.js';
import { FuseErrno, toErrno, errnoOf } from './errno.js';
import { isPromise, mapMaybe, type DirEntry, type Entry, type FuseOperations, type OpenResult, type RequestContext, type SetattrChanges } from './operations.js';
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
  NOTIFY_INVAL_INODE,
  OPEN_KILL_SUIDGID,
  OUT_HEADER_SIZE,
  Opcode,
  WRITE_KILL_SUIDGID,
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
  writeOutHeader,
  writeDirent,
  writeDirentPlus,
  type InitIn,
  type ReadIn,
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
  /**
   * FUSE_DONT_MASK: the kernel does not apply the caller's umask to new inodes' modes; the
   * filesystem gets it as ctx.umask (mknod, mkdir, create) and applies it itself, so a lower
   * filesystem's default ACLs can take its place as on a local filesystem. Default off.
   */
  dontMask?: boolean;
  /**
   * FUSE_POSIX_ACL: the kernel enforces POSIX ACLs from the system.posix_acl_* xattrs (with
   * default_permissions) and leaves default ACLs and umask to the filesystem. Default off.
   */
  posixAcl?: boolean;
  /**
   * FUSE_HANDLE_KILLPRIV_V2: the filesystem clears setuid/setgid itself on a write, truncate or
   * O_TRUNC open that ctx.killSuidgid marks (a caller without CAP_FSETID), and the kernel then asks
   * for security.capability once per attribute refresh instead of before every write(2). Default off.
   */
  handleKillpriv?: boolean;
  /**
   * READDIRPLUS (each listed name is looked up and its attributes sent with the listing):
   * 'auto' lets the kernel choose per directory (plus for the first read and after a lookup-heavy
   * pattern such as `ls -l`, plain afterwards), true always, false never (default).
   */
  readdirplus?: boolean | 'auto';
  /** Concurrent pooled reads of /dev/fuse while operations are pending; see the module comment. */
  readers?: number;
  /**
   * Microseconds to poll /dev/fuse before a blocking read (0: block at once). Default 50, FUSE_SPIN_US;
   * skipped while the CPU pressure is high (spin-gate.ts, FUSE_SPIN_MAX_PRESSURE, default 40%).
   */
  spinUs?: number;
  /** Blocking reads on the main thread while operations answer synchronously (default true; FUSE_SYNC_READS=0 turns it off). */
  syncReads?: boolean;
  /** The mount point, statfs'd by the waker thread; blocking reads need it (mountFuse sets it). */
  wakePath?: string;
  /** Milliseconds an idle blocking read waits before the event loop gets its turn (default 20). */
  idleMs?: number;
  /** Largest WRITE the kernel sends (default and maximum 1 MiB). */
  maxWrite?: number;
  /** Per-opcode table of server time printed at close (default: FUSE_STATS set). */
  stats?: boolean;
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

const ENOSYS = errnoOf('ENOSYS')!;
const ENOENT = errnoOf('ENOENT')!;
const ERANGE = errnoOf('ERANGE')!;
const EPROTO = errnoOf('EPROTO')!;
const EIO = errnoOf('EIO')!;
const EAGAIN = errnoOf('EAGAIN')!;

/**
 * Waker states in the shared word 0; word 1 counts requests read by blocking reads, word 2 is the
 * waker's thread id, word 3 is 1 while the waker sleeps until the next blocking episode.
 */
const W_LOOP = 0;
const W_BLOCKING = 1;
const W_STOP = 2;

/** Default number of /dev/fuse readers for this process' threadpool size. */
export function defaultReaders(): number {
  const pool = Number(process.env.UV_THREADPOOL_SIZE) || 4;
  return Math.max(1, Math.min(16, pool - 4));
}

const then: <T>(v: T | Promise<T>, fn: (x: T) => void) => void | Promise<void> = mapMaybe;

/** The waker thread (see the module comment); plain JS, evaluated as a worker. */
const WAKER = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const st = new Int32Array(workerData.sab);
Atomics.store(st, 2, Number(fs.readlinkSync('/proc/thread-self').split('/').pop()));
Atomics.notify(st, 2);
for (;;) {
  const s = Atomics.load(st, 0);
  if (s === ${W_STOP}) break;
  if (s !== ${W_BLOCKING}) {
    Atomics.store(st, 3, 1);
    Atomics.wait(st, 0, s);
    Atomics.store(st, 3, 0);
    continue;
  }
  const seq = Atomics.load(st, 1);
  if (Atomics.wait(st, 0, ${W_BLOCKING}, workerData.idleMs) !== 'timed-out') continue;
  if (Atomics.load(st, 1) !== seq) continue;
  try { fs.statfsSync(workerData.path); } catch {}
}
`;

interface OpStats {
  count: number;
  totalUs: number;
  /** buckets[i]: answers that took < 2^i microseconds (and >= 2^(i-1)). */
  buckets: number[];
}

/** One PSI descriptor per process, opened when a server first polls. */
let pressure: CpuPressure | undefined;
function processPressure(): CpuPressure {
  return (pressure ??= new CpuPressure());
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
  private readonly opts: Required<Omit<FuseServerOptions, 'debug' | 'wakePath'>> & Pick<FuseServerOptions, 'debug' | 'wakePath'>;
  private resolveClosed!: () => void;
  private resolveInit!: (c: ConnectionInfo) => void;
  private readonly free: Buffer[] = [];
  private pending = 0;
  private activeReaders = 0;
  private conn: ConnectionInfo | undefined;
  /** DONT_MASK was agreed: creating requests carry the caller's umask in ctx. */
  private dontMask = false;
  /** Blocking reads allowed (option on and the kernel accepted our wake-up at INIT). */
  private syncOk = false;
  /** A setImmediate turn is scheduled that will decide how to read next. */
  private yielding = false;
  /** Set by handle() when a request asks the blocking loop to leave (our wake-up). */
  private leaveBlocking = false;
  private gate: SpinGate | undefined;
  /**
   * FUSE_SPIN_ADAPT=1: poll or block at once, whichever serves the current requests faster
   * (spin-choice.ts). Off by default: in quick benches at low CPU pressure it made `cat` and the
   * warm listing slower (PERFORMANCE.md).
   */
  private readonly choice = process.env.FUSE_SPIN_ADAPT === '1' ? new SpinChoice() : undefined;
  private waker: Worker | undefined;
  private wakerState: Int32Array | undefined;
  private readonly stats = new Map<string, OpStats>();
  private readonly replyHeader = Buffer.allocUnsafe(OUT_HEADER_SIZE);
  /** Requests read by blocking reads on this thread and by pooled reads (for the stats). */
  private blockingReads = 0;
  private pooledReads = 0;
  /** Times the waker was woken for a blocking episode (for the stats). */
  private wakerWakes = 0;
  /** Polls before a blocking read that found a request, and that ran out (for the stats). */
  private pollFound = 0;
  private pollTimedOut = 0;

  constructor(
    readonly ops: FuseOperations,
    options: FuseServerOptions = {},
  ) {
    this.opts = {
      entryTimeout: options.entryTimeout ?? 1,
      attrTimeout: options.attrTimeout ?? 1,
      negativeTimeout: options.negativeTimeout ?? 0,
      writebackCache: options.writebackCache ?? false,
      dontMask: options.dontMask ?? false,
      posixAcl: options.posixAcl ?? false,
      handleKillpriv: options.handleKillpriv ?? false,
      readdirplus: options.readdirplus ?? false,
      readers: options.readers ?? defaultReaders(),
      spinUs: options.spinUs ?? Number(process.env.FUSE_SPIN_US ?? 50),
      syncReads: options.syncReads ?? process.env.FUSE_SYNC_READS !== '0',
      idleMs: options.idleMs ?? 20,
      maxWrite: Math.min(MAX_WRITE, Math.max(4096, options.maxWrite ?? MAX_WRITE)),
      stats: options.stats ?? !!process.env.FUSE_STATS,
      onError: options.onError ?? ((err, what) => console.error(`fuse: ${what}:`, err)),
      debug: options.debug,
      wakePath: options.wakePath,
    };
    this.closed = new Promise((r) => (this.resolveClosed = r));
    this.initialized = new Promise((r) => (this.resolveInit = r));
  }

  /** Start serving an already mounted /dev/fuse descriptor. */
  serve(fd: number): void {
    if (this.running) throw new Error('FuseServer.serve: already serving');
    this.fd = fd;
    this.running = true;
    // INIT and the wake-up check run on pooled reads; blocking reads start once they passed.
    this.poolRead();
  }

  /** Requests being handled right now (for tests and shutdown). */
  get inFlight(): number {
    return this.pending;
  }

  get connection(): ConnectionInfo | undefined {
    return this.conn;
  }

  /** Requests being served, by unique (INTERRUPT marks their context). */
  private readonly inflight = new Map<bigint, RequestContext>();

  private takeBuffer(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(BUFFER_SIZE);
  }

  private giveBuffer(b: Buffer): void {
    // Keep enough for the readers plus a few in-flight writes; let the rest be collected.
    if (this.free.length < this.opts.readers + 8) this.free.push(b);
  }

  /** Decide how the next request is read: blocking on this thread, or pooled reads. */
  private next(): void {
    if (!this.running || this.yielding) return;
    if (this.syncOk && this.pending === 0 && this.activeReaders === 0) {
      this.blockingLoop();
      return;
    }
    const want = this.pending > 0 ? this.opts.readers : 1;
    while (this.activeReaders < want) this.poolRead();
  }

  /** Let the event loop turn (promises, timers, signals), then decide again. */
  private yieldTurn(): void {
    if (this.yielding) return;
    this.yielding = true;
    setImmediate(() => {
      this.yielding = false;
      this.next();
    });
  }

  /** Read errors shared by both ways of reading; returns false when serving must stop. */
  private readFailed(err: NodeJS.ErrnoException): boolean {
    const code = err.code;
    // ENOENT/EINTR: the request was interrupted before we read it: just read the next one.
    if (code === 'ENOENT' || code === 'EINTR' || code === 'EAGAIN') return true;
    if (code === 'ENODEV') this.finish(); // unmounted
    else this.finish(err);
    return false;
  }

  private blockingLoop(): void {
    const st = this.wakerState!;
    Atomics.store(st, 0, W_BLOCKING);
    // Wake the waker only if it sleeps until an episode starts; in its timed wait it notices this
    // one by itself (at worst one idle period later). A notify per episode woke its thread on
    // the other core after every answer given on a promise (create, release, unlink).
    if (Atomics.load(st, 3) === 1) {
      Atomics.notify(st, 0);
      this.wakerWakes++;
    }
    const started = Date.now();
    let count = 0;
    try {
      while (this.running) {
        const buf = this.takeBuffer();
        let n: number;
        try {
          this.spinForRequest();
          n = fs.readSync(this.fd, buf, 0, buf.length, null);
        } catch (e) {
          this.giveBuffer(buf);
          if (this.readFailed(e as NodeJS.ErrnoException)) continue;
          return;
        }
        Atomics.add(st, 1, 1);
        this.blockingReads++;
        this.choice?.request(performance.now());
        if (n === 0) {
          this.giveBuffer(buf);
          this.finish();
          return;
        }
        this.handle(buf, n);
        if (this.leaveBlocking) {
          // Woken because we were idle: wait in the event loop with one pooled read.
          this.leaveBlocking = false;
          this.choice?.pause();
          Atomics.store(st, 0, W_LOOP);
          this.poolRead();
          return;
        }
        // An answer is pending on a promise, or we have held the loop long enough: give it a turn.
        if (this.pending > 0 || (++count & 63) === 0 && Date.now() - started > 50) {
          Atomics.store(st, 0, W_LOOP);
          this.yieldTurn();
          return;
        }
      }
    } finally {
      if (Atomics.load(st, 0) !== W_STOP) Atomics.store(st, 0, W_LOOP);
    }
  }

  /**
   * Poll /dev/fuse for up to spinUs before the blocking read. A caller's next request usually
   * follows our reply within tens of microseconds; blocking at once puts this thread to sleep and
   * an idle CPU into a deep idle state, and waking it costs more than the request itself (the Go
   * runtime's spinning threads give gocryptfs the same effect). Bounded, so an idle mount still
   * sleeps in read(2).
   */
  private spinForRequest(): void {
    const us = this.opts.spinUs;
    if (us <= 0 || (this.choice && !this.choice.spin)) return;
    const now = process.hrtime.bigint();
    if (!this.spinGate().allowed(now)) return;
    const until = now + BigInt(us) * 1000n;
    let found = false;
    while (!(found = readableNow(this.fd)) && process.hrtime.bigint() < until);
    if (found) this.pollFound++;
    else this.pollTimedOut++;
  }

  /** The poll only while the CPUs have room (spin-gate.ts); FUSE_SPIN_MAX_PRESSURE=100 always polls. */
  private spinGate(): SpinGate {
    if (!this.gate) {
      const max = Number(process.env.FUSE_SPIN_MAX_PRESSURE ?? 40);
      this.gate = new SpinGate(() => (max >= 100 ? undefined : processPressure().some10()), max, max / 2);
    }
    return this.gate;
  }

  private poolRead(): void {
    if (!this.running) return;
    const buf = this.takeBuffer();
    this.activeReaders++;
    fs.read(this.fd, buf, 0, buf.length, null, (err, n) => {
      this.activeReaders--;
      this.pooledReads++;
      if (err) {
        this.giveBuffer(buf);
        if (this.readFailed(err)) this.next();
        return;
      }
      if (n === 0) {
        this.giveBuffer(buf);
        this.finish();
        return;
      }
      // With operations pending, keep reads going while this request is handled.
      if (this.pending > 0) this.next();
      this.handle(buf, n);
      if (this.leaveBlocking) {
        // A wake-up that raced with leaving the blocking loop: stay in the event loop.
        this.leaveBlocking = false;
        if (this.activeReaders === 0) this.poolRead();
        return;
      }
      // An answer on a promise that settles within this turn (an async function doing
      // synchronous work) must not count as pending work: decide after the turn.
      if (this.pending > 0) this.yieldTurn();
      else this.next();
    });
  }

  /** Start the waker thread (after INIT); blocking reads begin once it runs. */
  private startWaker(): void {
    if (!this.opts.syncReads || !this.opts.wakePath || this.waker) return;
    const sab = new SharedArrayBuffer(16);
    this.wakerState = new Int32Array(sab);
    this.waker = new Worker(WAKER, { eval: true, workerData: { sab, path: this.opts.wakePath, idleMs: this.opts.idleMs } });
    this.waker.unref();
    this.waker.on('error', (e) => {
      this.syncOk = false;
      this.opts.onError(e, 'waker thread');
    });
    this.waker.on('online', () => {
      // Its thread id is published before anything else it does.
      Atomics.wait(this.wakerState!, 2, 0, 1000);
      this.syncOk = this.running;
    });
  }

  private finish(err?: Error): void {
    if (!this.running) return;
    this.running = false;
    this.syncOk = false;
    if (err) this.closeError = err;
    if (err) this.opts.onError(err, 'reading /dev/fuse');
    if (this.opts.stats) this.printStats();
    if (this.waker && this.wakerState) {
      Atomics.store(this.wakerState, 0, W_STOP);
      Atomics.notify(this.wakerState, 0);
      void this.waker.terminate().catch(() => undefined);
    }
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

  private record(what: string, t0: number): void {
    const us = (performance.now() - t0) * 1000;
    let s = this.stats.get(what);
    if (!s) this.stats.set(what, (s = { count: 0, totalUs: 0, buckets: [] }));
    s.count++;
    s.totalUs += us;
    const i = us < 1 ? 0 : Math.ceil(Math.log2(us + 1e-9));
    s.buckets[i] = (s.buckets[i] ?? 0) + 1;
  }

  /** The per-opcode table: count, mean and the 50th/99th percentile bucket of server time. */
  statsTable(): string {
    const pct = (s: OpStats, p: number) => {
      let seen = 0;
      for (let i = 0; i < s.buckets.length; i++) {
        seen += s.buckets[i] ?? 0;
        if (seen >= s.count * p) return `<${2 ** i}`;
      }
      return '?';
    };
    const lines = ['opcode        count   mean us     p50 us     p99 us'];
    for (const [op, s] of [...this.stats].sort((a, b) => b[1].totalUs - a[1].totalUs)) {
      lines.push(`${op.padEnd(12)} ${String(s.count).padStart(6)} ${(s.totalUs / s.count).toFixed(1).padStart(9)} ${pct(s, 0.5).padStart(10)} ${pct(s, 0.99).padStart(10)}`);
    }
    lines.push(`reads: ${this.blockingReads} blocking, ${this.pooledReads} pooled; blocking reads ${this.syncOk || this.blockingReads ? 'on' : 'off'}; waker woken ${this.wakerWakes} times`);
    lines.push(`poll before a blocking read: found a request ${this.pollFound} times, ran out ${this.pollTimedOut} times`);
    if (this.choice) lines.push(`poll before blocking chosen in ${this.choice.chosePoll} of ${this.choice.probes} probes`);
    return lines.join('\n') + '\n';
  }

  private printStats(): void {
    const dest = process.env.FUSE_STATS;
    const text = `fuse server time per request (pid ${process.pid}):\n${this.statsTable()}`;
    try {
      if (dest && dest !== '1') fs.appendFileSync(dest, text);
      else process.stderr.write(text);
    } catch (e) {
      this.opts.onError(e, 'writing FUSE_STATS');
    }
  }

  // ---- replies ----

  private reply(unique: bigint, error: number, ...parts: Buffer[]): void {
    let len = OUT_HEADER_SIZE;
    for (const p of parts) len += p.length;
    const h = this.header(unique, error, len);
    try {
      if (parts.length === 0) fs.writeSync(this.fd, h);
      else fs.writevSync(this.fd, parts.length === 1 ? [h, parts[0]] : [h, ...parts]);
    } catch (e) {
      this.replyFailed(e);
    }
  }

  /** reply() of a success with one part (a READ's data), without the rest parameter's array. */
  private reply1(unique: bigint, part: Buffer): void {
    const h = this.header(unique, 0, OUT_HEADER_SIZE + part.length);
    try {
      fs.writevSync(this.fd, [h, part]);
    } catch (e) {
      this.replyFailed(e);
    }
  }

  /** The reply header; replies are written synchronously, so one buffer serves them all. */
  private header(unique: bigint, error: number, len: number): Buffer {
    return writeOutHeader(this.replyHeader, len, -error, unique);
  }

  private replyFailed(e: unknown): void {
    const code = (e as NodeJS.ErrnoException).code;
    // ENOENT: the request was interrupted and is gone. ENODEV/EBADF: we are unmounted.
    if (code !== 'ENOENT' && code !== 'ENODEV' && code !== 'EBADF') this.opts.onError(e, 'writing a reply');
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

  /**
   * The filesystem changed attributes the kernel does not expect this request to change (a
   * setuid bit cleared on write): invalidate its cached ones before the reply, so that nothing
   * (an exec above all) uses the old mode after the call returns.
   */
  private invalidateChanged(ino: number, ctx: RequestContext): void {
    if (!ctx.attrsChanged) return;
    const b = Buffer.alloc(OUT_HEADER_SIZE + 24);
    b.writeUInt32LE(b.length, 0);
    b.writeInt32LE(NOTIFY_INVAL_INODE, 4);
    b.writeBigUInt64LE(0n, 8);
    b.writeBigUInt64LE(BigInt(ino), 16);
    b.writeBigInt64LE(-1n, 24); // offset < 0: attributes only, no pages
    b.writeBigInt64LE(0n, 32);
    try {
      fs.writeSync(this.fd, b);
    } catch (e) {
      // ENOENT: the kernel holds no such inode (nothing cached to invalidate)
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.opts.onError(e, 'NOTIFY_INVAL_INODE');
    }
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
    if (req.op === Opcode.STATFS && this.wakerState && header.pid === Atomics.load(this.wakerState, 2)) {
      // Our waker: the main thread was idle in a blocking read; let the event loop run.
      this.giveBuffer(buf);
      this.leaveBlocking = true;
      this.reply(header.unique, EAGAIN);
      return;
    }
    const ctx: RequestContext = { uid: header.uid, gid: header.gid, pid: header.pid, unique: header.unique };
    const what = typeof req.op === 'number' ? Opcode[req.op] : `op${header.opcode}`;
    this.opts.debug?.(`${header.unique} ${what} ino=${header.nodeid}`);
    const t0 = this.opts.stats ? performance.now() : 0;
    // Only WRITE keeps a view into the read buffer (its data); all else was copied by the parser.
    const holdsBuffer = req.op === Opcode.WRITE;
    if (!holdsBuffer) this.giveBuffer(buf);
    if (req.op === Opcode.SETXATTR) req.value = Buffer.from(req.value);
    let p: void | Promise<void> = undefined;
    try {
      p = this.dispatch(header.nodeid, header.unique, req, ctx);
    } catch (e) {
      this.replyError(header.unique, e, what);
    }
    if (!p) {
      if (holdsBuffer) this.giveBuffer(buf);
      if (t0) this.record(what, t0);
      return;
    }
    this.pending++;
    this.inflight.set(header.unique, ctx);
    p.catch((e) => this.replyError(header.unique, e, what)).finally(() => {
      this.pending--;
      this.inflight.delete(header.unique);
      if (holdsBuffer) this.giveBuffer(buf);
      if (t0) this.record(what, t0);
      this.next();
    });
  }

  /** Reply to one request: synchronously when the operation returned a value, else a promise. */
  private dispatch(ino: number, unique: bigint, req: Request, ctx: RequestContext): void | Promise<void> {
    // READ first, in a function of its own: the closures below are made per request (random
    // 4 KiB reads are one READ each, and these closures were an eighth of their garbage).
    if (req.op === Opcode.READ) return this.read(ino, unique, req.arg, ctx);
    return this.dispatchOther(ino, unique, req, ctx);
  }

  private read(ino: number, unique: bigint, arg: ReadIn, ctx: RequestContext): void | Promise<void> {
    const ops = this.ops;
    if (!ops.read) return this.reply(unique, ENOSYS);
    const size = arg.size;
    const r = ops.read(ino, arg.fh, arg.offset, size, ctx);
    if (isPromise(r)) return r.then((data) => this.readReply(unique, size, data));
    this.readReply(unique, size, r);
  }

  private readReply(unique: bigint, size: number, data: Buffer): void {
    this.reply1(unique, data.length > size ? data.subarray(0, size) : data);
    this.ops.readDone?.(data);
  }

  private dispatchOther(ino: number, unique: bigint, req: Request, ctx: RequestContext): void | Promise<void> {
    const ops = this.ops;
    const ok = (...parts: Buffer[]) => this.reply(unique, 0, ...parts);
    const done = () => this.reply(unique, 0);
    const nosys = () => this.reply(unique, ENOSYS);
    const entry = (e: Entry) => ok(this.entryOut(e));
    const attr = (a: Parameters<typeof encodeAttrOut>[1]) => ok(encodeAttrOut(this.opts.attrTimeout, a));
    switch (req.op) {
      case Opcode.INIT:
        return this.init(unique, req.arg);
      case Opcode.DESTROY:
        return then(ops.destroy?.(), done);
      case Opcode.FORGET:
        this.forget(ino, req.nlookup);
        return;
      case Opcode.BATCH_FORGET:
        for (const it of req.items) this.forget(it.nodeid, it.nlookup);
        return;
      case Opcode.INTERRUPT: {
        // Long operations poll ctx.interrupted and stop; the reply stays the operation's own.
        const target = this.inflight.get(req.target);
        if (target) target.interrupted = true;
        return;
      }
      case Opcode.LOOKUP: {
        if (!ops.lookup) return nosys();
        const negative = (e: unknown) => {
          if (this.opts.negativeTimeout > 0 && toErrno(e).errno === ENOENT) {
            // nodeid 0 with a timeout: the kernel caches the absence.
            return ok(encodeEntryOut(0, 0, this.opts.negativeTimeout, 0, zeroAttr));
          }
          throw e;
        };
        let r: Entry | Promise<Entry>;
        try {
          r = ops.lookup(ino, req.name, ctx);
        } catch (e) {
          return negative(e);
        }
        return isPromise(r) ? r.then(entry, negative) : entry(r);
      }
      case Opcode.GETATTR: {
        if (!ops.getattr) return nosys();
        const fh = req.getattrFlags & GETATTR_FH ? req.fh : undefined;
        return then(ops.getattr(ino, fh, ctx), attr);
      }
      case Opcode.SETATTR: {
        if (!ops.setattr) return nosys();
        const a = req.arg;
        const c: SetattrChanges = {};
        if (a.valid & Fattr.MODE) c.mode = a.mode;
        if (a.valid & Fattr.UID) c.uid = a.uid;
        if (a.valid & Fattr.GID) c.gid = a.gid;
        if (a.valid & Fattr.SIZE) c.size = a.size;
        // Times also as integer nanoseconds: a double of ms since 1970 cannot hold every ns.
        if (a.valid & Fattr.ATIME_NOW) c.atimeMs = c.atimeNs = 'now';
        else if (a.valid & Fattr.ATIME) {
          c.atimeMs = a.atime * 1000 + a.atimensec / 1e6;
          c.atimeNs = BigInt(a.atime) * 1_000_000_000n + BigInt(a.atimensec);
        }
        if (a.valid & Fattr.MTIME_NOW) c.mtimeMs = c.mtimeNs = 'now';
        else if (a.valid & Fattr.MTIME) {
          c.mtimeMs = a.mtime * 1000 + a.mtimensec / 1e6;
          c.mtimeNs = BigInt(a.mtime) * 1_000_000_000n + BigInt(a.mtimensec);
        }
        if (a.valid & Fattr.CTIME) c.ctimeMs = a.ctime * 1000 + a.ctimensec / 1e6;
        if (a.valid & Fattr.FH) c.fh = a.fh;
        if (a.valid & Fattr.KILL_SUIDGID) ctx.killSuidgid = true;
        // The reply's attributes replace the kernel's, cleared bits included.
        return then(ops.setattr(ino, c, ctx), attr);
      }
      case Opcode.READLINK:
        if (!ops.readlink) return nosys();
        return then(ops.readlink(ino, ctx), (t) => ok(typeof t === 'string' ? Buffer.from(t) : t));
      case Opcode.SYMLINK:
        if (!ops.symlink) return nosys();
        return then(ops.symlink(ino, req.name, req.target, ctx), entry);
      case Opcode.MKNOD:
        if (!ops.mknod) return nosys();
        if (this.dontMask) ctx.umask = req.umask;
        return then(ops.mknod(ino, req.name, req.mode, req.rdev, ctx), entry);
      case Opcode.MKDIR:
        if (!ops.mkdir) return nosys();
        if (this.dontMask) ctx.umask = req.umask;
        return then(ops.mkdir(ino, req.name, req.mode, ctx), entry);
      case Opcode.UNLINK:
        if (!ops.unlink) return nosys();
        return then(ops.unlink(ino, req.name, ctx), done);
      case Opcode.RMDIR:
        if (!ops.rmdir) return nosys();
        return then(ops.rmdir(ino, req.name, ctx), done);
      case Opcode.RENAME:
        if (!ops.rename) return nosys();
        return then(ops.rename(ino, req.name, req.newdir, req.newname, req.flags, ctx), done);
      case Opcode.LINK:
        if (!ops.link) return nosys();
        return then(ops.link(req.oldnodeid, ino, req.name, ctx), entry);
      case Opcode.OPEN:
        if (req.openFlags & OPEN_KILL_SUIDGID) ctx.killSuidgid = true;
        return then(ops.open ? ops.open(ino, req.flags, ctx) : undefined, (o) => {
          this.invalidateChanged(ino, ctx);
          ok(this.openOut(o, false));
        });
      case Opcode.OPENDIR:
        return then(ops.opendir ? ops.opendir(ino, req.flags, ctx) : undefined, (o) => ok(this.openOut(o, true)));
      case Opcode.WRITE: {
        if (!ops.write) return nosys();
        const { fh, offset, data } = req.arg;
        if (req.arg.writeFlags & WRITE_KILL_SUIDGID) ctx.killSuidgid = true;
        return then(ops.write(ino, fh, offset, data, ctx), (n) => {
          this.invalidateChanged(ino, ctx);
          ok(encodeWriteOut(n));
        });
      }
      case Opcode.FLUSH:
        if (!ops.flush) return nosys();
        return then(ops.flush(ino, req.fh, req.lockOwner, ctx), done);
      case Opcode.RELEASE:
        return then(ops.release?.(ino, req.fh, req.flags, ctx), done);
      case Opcode.FSYNC:
        if (!ops.fsync) return nosys();
        return then(ops.fsync(ino, req.fh, (req.fsyncFlags & FSYNC_FDATASYNC) !== 0, ctx), done);
      case Opcode.READDIR:
      case Opcode.READDIRPLUS:
        if (!ops.readdir) return nosys();
        return then(this.readdir(ino, req.arg.fh, req.arg.offset, req.arg.size, req.op === Opcode.READDIRPLUS, ctx), ok);
      case Opcode.RELEASEDIR:
        return then(ops.releasedir?.(ino, req.fh, ctx), done);
      case Opcode.FSYNCDIR:
        if (!ops.fsyncdir) return nosys();
        return then(ops.fsyncdir(ino, req.fh, (req.fsyncFlags & FSYNC_FDATASYNC) !== 0, ctx), done);
      case Opcode.STATFS: {
        const s = ops.statfs
          ? ops.statfs(ino, ctx)
          : { blocks: 0, bfree: 0, bavail: 0, files: 0, ffree: 0, bsize: 512, namelen: 255 };
        return then(s, (v) => ok(encodeStatfsOut(v)));
      }
      case Opcode.SETXATTR:
        if (!ops.setxattr) return nosys();
        return then(ops.setxattr(ino, req.name, req.value, req.flags, ctx), done);
      case Opcode.GETXATTR: {
        if (!ops.getxattr) return nosys();
        const size = req.size;
        return then(ops.getxattr(ino, req.name, ctx), (v) => {
          if (size === 0) return ok(encodeXattrSizeOut(v.length));
          if (v.length > size) return this.reply(unique, ERANGE);
          return ok(v);
        });
      }
      case Opcode.LISTXATTR: {
        if (!ops.listxattr) return nosys();
        const size = req.size;
        return then(ops.listxattr(ino, ctx), (names) => {
          const v = Buffer.from(names.map((s) => s + '\0').join(''));
          if (size === 0) return ok(encodeXattrSizeOut(v.length));
          if (v.length > size) return this.reply(unique, ERANGE);
          return ok(v);
        });
      }
      case Opcode.REMOVEXATTR:
        if (!ops.removexattr) return nosys();
        return then(ops.removexattr(ino, req.name, ctx), done);
      case Opcode.ACCESS:
        if (!ops.access) return nosys();
        return then(ops.access(ino, req.mask, ctx), done);
      case Opcode.CREATE: {
        if (!ops.create) return nosys();
        if (this.dontMask) ctx.umask = req.umask;
        // An existing file opened with O_TRUNC: its entry's attributes go to the kernel with the reply.
        if (req.openFlags & OPEN_KILL_SUIDGID) ctx.killSuidgid = true;
        return then(ops.create(ino, req.name, req.mode, req.flags, ctx), (r) => ok(this.entryOut(r.entry), this.openOut(r.open, false)));
      }
      case Opcode.FALLOCATE:
        if (!ops.fallocate) return nosys();
        return then(ops.fallocate(ino, req.fh, req.offset, req.length, req.mode, ctx), () => {
          this.invalidateChanged(ino, ctx);
          done();
        });
      case Opcode.LSEEK:
        if (!ops.lseek) return nosys();
        return then(ops.lseek(ino, req.fh, req.offset, req.whence, ctx), (o) => ok(encodeLseekOut(o)));
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
    if (this.opts.dontMask) want |= InitFlags.DONT_MASK;
    if (this.opts.posixAcl) want |= InitFlags.POSIX_ACL;
    if (this.opts.handleKillpriv) want |= InitFlags.HANDLE_KILLPRIV_V2;
    if (this.opts.readdirplus && this.ops.readdir && this.ops.lookup) {
      want |= InitFlags.DO_READDIRPLUS;
      if (this.opts.readdirplus === 'auto') want |= InitFlags.READDIRPLUS_AUTO;
    }
    const flags = (arg.flags & want) >>> 0;
    this.dontMask = (flags & InitFlags.DONT_MASK) !== 0;
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
    this.startWaker();
    this.resolveInit(this.conn);
  }

  private readdir(
    ino: number,
    fh: number,
    offset: number,
    size: number,
    plus: boolean,
    ctx: RequestContext,
  ): Buffer | Promise<Buffer> {
    return mapMaybe(this.ops.readdir!(ino, fh, offset, size, ctx, plus), (entries) => this.fillDir(entries, ino, offset, size, plus, ctx));
  }

  /** Encode what fits of `entries`; with `plus`, each name's lookup (sync or async) goes along. */
  private fillDir(entries: DirEntry[], ino: number, offset: number, size: number, plus: boolean, ctx: RequestContext): Buffer | Promise<Buffer> {
    const out = Buffer.alloc(size);
    let pos = 0;
    const plusEntry = (entry: Entry | null) =>
      entry && {
        nodeid: entry.ino,
        generation: entry.generation ?? 0,
        entryTimeout: entry.entryTimeout ?? this.opts.entryTimeout,
        attrTimeout: entry.attrTimeout ?? this.opts.attrTimeout,
        attr: entry.attr,
      };
    const step = (from: number): Buffer | Promise<Buffer> => {
      for (let i = from; i < entries.length; i++) {
        const d = entries[i];
        const name = typeof d.name === 'string' ? Buffer.from(d.name) : d.name;
        const off = d.offset ?? offset + i + 1;
        const type = (d.mode & S_IFMT) >>> 12;
        if (!plus) {
          const next = writeDirent(out, pos, d.ino, off, type, name);
          if (next < 0) break;
          pos = next;
          continue;
        }
        // Check the fit first: a looked-up entry that is not sent would leak a lookup count.
        if (pos + ENTRY_OUT_SIZE + direntSize(name.length) > out.length) break;
        // The kernel skips "." and ".." without counting a lookup, so neither do we.
        let r: Entry | Promise<Entry | null> | null = null;
        if (!isDotOrDotDot(name)) {
          try {
            r = d.lookup ? d.lookup() : this.ops.lookup!(ino, name, ctx);
          } catch {
            r = null; // vanished meanwhile: send the name only
          }
        }
        if (r && isPromise(r)) {
          return r
            .then(
              (e) => e,
              () => null,
            )
            .then((e) => {
              pos = writeDirentPlus(out, pos, plusEntry(e), d.ino, off, type, name);
              return step(i + 1);
            });
        }
        pos = writeDirentPlus(out, pos, plusEntry(r), d.ino, off, type, name);
      }
      return out.subarray(0, pos);
    };
    return step(0);
  }
}

function isDotOrDotDot(n: Buffer): boolean {
  return (n.length === 1 && n[0] === 0x2e) || (n.length === 2 && n[0] === 0x2e && n[1] === 0x2e);
}

const zeroAttr = { ino: 0, mode: 0, nlink: 0, uid: 0, gid: 0, size: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0 };

export { FuseErrno };
