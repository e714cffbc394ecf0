/**
 * The inode-based filesystem interface a FuseServer serves (the shape of libfuse's lowlevel API,
 * async). Inode numbers are the FUSE node ids: 1 is the root; `lookup`, `mkdir`, `create`, ... hand
 * out new ones and `forget` says when the kernel dropped its references.
 *
 * File names and symlink targets arrive as Buffers (bytes, as Linux has them).
 *
 * Every method may throw (or reject with) a FuseErrno, or a Node system error (its `code` maps to
 * the errno), which becomes the error reply. A method left out replies ENOSYS, except open/opendir
 * (fh 0), release/releasedir (success) and statfs (an empty filesystem).
 */
import type { Attr, StatFs } from './protocol.js';

export type { Attr, StatFs } from './protocol.js';

/** Who asked: the calling process' credentials, for permission checks and new files' owners. */
export interface RequestContext {
  uid: number;
  gid: number;
  pid: number;
  unique: bigint;
  /** Set when the kernel sent INTERRUPT for this request (the caller got a signal or died). */
  interrupted?: boolean;
  /** mknod/mkdir/create with DONT_MASK agreed: the caller's umask, for the filesystem to apply. */
  umask?: number;
  /**
   * handleKillpriv agreed: this write, truncate or O_TRUNC open (or create of an existing file)
   * comes from a caller without CAP_FSETID, so the filesystem clears the setuid bit, and the
   * setgid bit when group-executable or the caller is not in the file's group, as a local
   * filesystem does.
   */
  killSuidgid?: boolean;
  /** Set by the filesystem when it did: after a write, open or fallocate the server invalidates the kernel's cached attributes. */
  attrsChanged?: boolean;
}

/** A name's inode, as replied to lookup/mkdir/mknod/symlink/link/create. */
export interface Entry {
  /** Node id (not 0; 1 is the root). The kernel will send `forget` for every entry replied. */
  ino: number;
  /** Bumped when a node id is reused, so ino:generation stays unique. */
  generation?: number;
  attr: Attr;
  /** Seconds the name and the attributes may be cached; the server's options by default. */
  entryTimeout?: number;
  attrTimeout?: number;
}

export interface OpenResult {
  fh?: number;
  /** Bypass the page cache for this file (reads/writes go straight to the filesystem). */
  directIo?: boolean;
  /** Keep cached pages from an earlier open (the file did not change behind the kernel). */
  keepCache?: boolean;
  nonSeekable?: boolean;
  /** For opendir: let the kernel cache the directory listing. */
  cacheDir?: boolean;
}

export interface DirEntry {
  /** Bytes as on disk, or a string taken as UTF-8. */
  name: string | Buffer;
  /** The inode number shown in d_ino (need not be a node id). */
  ino: number | bigint;
  /** st_mode or just its S_IFMT bits; the dirent type is derived from it. */
  mode: number;
  /** Cookie to resume after this entry; defaults to (request offset + index + 1). */
  offset?: number;
  /**
   * READDIRPLUS: this entry's lookup, called only for an entry that goes into the reply (the
   * kernel counts it as a LOOKUP). null sends the name alone (nodeid 0: the kernel keeps the inode
   * it has, or looks the name up when it needs it). Without it the server calls ops.lookup.
   */
  lookup?: () => MaybePromise<Entry | null>;
}

/** setattr's changes: only the fields present are to be changed. */
export interface SetattrChanges {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  /** Milliseconds since the epoch (fractional for sub-ms), or 'now'. */
  atimeMs?: number | 'now';
  mtimeMs?: number | 'now';
  /** The same times in exact integer nanoseconds since the epoch (set with the *Ms fields). */
  atimeNs?: bigint | 'now';
  mtimeNs?: bigint | 'now';
  ctimeMs?: number;
  /** The handle when set through an open file (ftruncate, futimens). */
  fh?: number;
}

export type MaybePromise<T> = T | Promise<T>;

export function isPromise<T>(v: MaybePromise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | undefined)?.then === 'function';
}

/** fn(v) now when v is a value, after it when v is a promise (an answer stays synchronous when it was). */
export function mapMaybe<T, U>(v: MaybePromise<T>, fn: (x: T) => MaybePromise<U>): MaybePromise<U> {
  return isPromise(v) ? v.then(fn) : fn(v);
}

export interface FuseOperations {
  init?(): MaybePromise<void>;
  destroy?(): MaybePromise<void>;

  lookup?(parent: number, name: Buffer, ctx: RequestContext): MaybePromise<Entry>;
  /** The kernel dropped `nlookup` references to `ino`. No reply; errors are only logged. */
  forget?(ino: number, nlookup: number): void;
  getattr?(ino: number, fh: number | undefined, ctx: RequestContext): MaybePromise<Attr>;
  setattr?(ino: number, changes: SetattrChanges, ctx: RequestContext): MaybePromise<Attr>;
  readlink?(ino: number, ctx: RequestContext): MaybePromise<string | Buffer>;
  symlink?(parent: number, name: Buffer, target: Buffer, ctx: RequestContext): MaybePromise<Entry>;
  /** mode includes the S_IFMT type bits; the umask is applied already, or given in ctx.umask (dontMask). */
  mknod?(parent: number, name: Buffer, mode: number, rdev: number, ctx: RequestContext): MaybePromise<Entry>;
  /** mode holds the permission bits only (no S_IFDIR); umask as for mknod. */
  mkdir?(parent: number, name: Buffer, mode: number, ctx: RequestContext): MaybePromise<Entry>;
  unlink?(parent: number, name: Buffer, ctx: RequestContext): MaybePromise<void>;
  rmdir?(parent: number, name: Buffer, ctx: RequestContext): MaybePromise<void>;
  /** flags: RENAME_NOREPLACE (1), RENAME_EXCHANGE (2), RENAME_WHITEOUT (4); 0 for plain rename. */
  rename?(
    parent: number,
    name: Buffer,
    newParent: number,
    newName: Buffer,
    flags: number,
    ctx: RequestContext,
  ): MaybePromise<void>;
  link?(ino: number, newParent: number, newName: Buffer, ctx: RequestContext): MaybePromise<Entry>;

  /**
   * flags are the open(2) flags (O_CREAT/O_EXCL/O_NOCTTY already handled by the kernel). O_TRUNC
   * must be done here: with ATOMIC_O_TRUNC (negotiated) the kernel sends no setattr for it.
   */
  open?(ino: number, flags: number, ctx: RequestContext): MaybePromise<OpenResult>;
  /** Return at most `size` bytes; fewer only at end of file (the kernel treats short reads as EOF). */
  read?(ino: number, fh: number, offset: number, size: number, ctx: RequestContext): MaybePromise<Buffer>;
  /**
   * Called with what read() gave once the READ reply carrying it was written (not after an error
   * or a failed read): the filesystem may use that buffer again.
   */
  readDone?(data: Buffer): void;
  /** `data` is a view into a reused buffer: copy what you keep beyond the returned promise. */
  write?(ino: number, fh: number, offset: number, data: Buffer, ctx: RequestContext): MaybePromise<number>;
  /** Called on every close(2) of a descriptor (may be several per open). */
  flush?(ino: number, fh: number, lockOwner: bigint, ctx: RequestContext): MaybePromise<void>;
  /** The last reference to the open file is gone. */
  release?(ino: number, fh: number, flags: number, ctx: RequestContext): MaybePromise<void>;
  fsync?(ino: number, fh: number, datasync: boolean, ctx: RequestContext): MaybePromise<void>;

  opendir?(ino: number, flags: number, ctx: RequestContext): MaybePromise<OpenResult>;
  /**
   * Entries from cookie `offset` on (0 = start; "." and ".." are the filesystem's to list).
   * Return as many as convenient; the server sends what fits in `size` bytes and the kernel
   * asks again from the last sent entry's offset. An empty array means end of directory.
   */
  /** `plus`: the kernel asked for READDIRPLUS (entries may carry their `lookup`). */
  readdir?(ino: number, fh: number, offset: number, size: number, ctx: RequestContext, plus: boolean): MaybePromise<DirEntry[]>;
  releasedir?(ino: number, fh: number, ctx: RequestContext): MaybePromise<void>;
  fsyncdir?(ino: number, fh: number, datasync: boolean, ctx: RequestContext): MaybePromise<void>;

  statfs?(ino: number, ctx: RequestContext): MaybePromise<StatFs>;

  /** flags: XATTR_CREATE (1) / XATTR_REPLACE (2). */
  setxattr?(ino: number, name: string, value: Buffer, flags: number, ctx: RequestContext): MaybePromise<void>;
  /** The whole value; the server handles size queries and ERANGE. Throw ENODATA when absent. */
  getxattr?(ino: number, name: string, ctx: RequestContext): MaybePromise<Buffer>;
  listxattr?(ino: number, ctx: RequestContext): MaybePromise<string[]>;
  removexattr?(ino: number, name: string, ctx: RequestContext): MaybePromise<void>;

  /** Only asked without default_permissions; ENOSYS makes the kernel stop asking (and allow). */
  access?(ino: number, mask: number, ctx: RequestContext): MaybePromise<void>;
  /** Create and open; mode includes S_IFREG. Left out, the kernel uses mknod + open. */
  create?(
    parent: number,
    name: Buffer,
    mode: number,
    flags: number,
    ctx: RequestContext,
  ): MaybePromise<{ entry: Entry; open: OpenResult }>;
  fallocate?(ino: number, fh: number, offset: number, length: number, mode: number, ctx: RequestContext): MaybePromise<void>;
  /** SEEK_DATA (3) / SEEK_HOLE (4); the kernel handles SEEK_SET/CUR/END itself. */
  lseek?(ino: number, fh: number, offset: number, whence: number, ctx: RequestContext): MaybePromise<number>;
}
