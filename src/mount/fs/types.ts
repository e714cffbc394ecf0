/** What the filesystem layer hands out (attributes, entries) and keeps per node and per open file. */
import type { FdLowerFile } from '../../lower/at.js';
import type { EcryptfsFile } from '../../volume/file.js';

export interface Attr {
  ino: number;
  size: number;
  blocks: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  /** Exact times in nanoseconds (what FUSE replies; the *Ms fields are for tests and tools). */
  atimeNs?: bigint;
  mtimeNs?: bigint;
  ctimeNs?: bigint;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  blksize: number;
}

export interface Entry {
  nodeid: number;
  attr: Attr;
}

/** Who asks: a FUSE request's caller (uid 0 or absent: the daemon's own credentials). */
export interface Caller {
  uid: number;
  gid: number;
  pid: number;
  /** Set by the FUSE server when the kernel interrupts the request. */
  interrupted?: boolean;
  /** The caller's umask when the kernel leaves applying it to us (FUSE_DONT_MASK). */
  umask?: number;
  /** A write, truncate or O_TRUNC open by a caller without CAP_FSETID (FUSE_HANDLE_KILLPRIV_V2). */
  killSuidgid?: boolean;
  /** Set when setuid/setgid were cleared for it, so that the kernel drops its cached mode. */
  attrsChanged?: boolean;
}

/**
 * One node the kernel holds (a FUSE nodeid): the lower inode and one name of it. The kernel can
 * hold every file of a huge directory at once, so a node is kept small (~250 bytes with its table
 * entries): one object, numbers and one string; no Buffer of its own (a Buffer is a heap object,
 * an ArrayBuffer and a malloc'd store, ~300 bytes for a 100-byte name).
 */
export class Node {
  /**
   * Lower name in the parent directory: its bytes as a latin1 string (exact for any byte),
   * compared and copied without a Buffer.
   */
  key: string;

  nlookup = 0;

  /** When (performance.now(), ms) the kernel was last sent an entry for it: its name is cached until then + the entry timeout. */
  entryAt = 0;

  /**
   * security.capability of the lower inode: null when known absent, undefined when not yet read.
   * The kernel asks for it before every write (to drop file capabilities), so it is read once.
   */
  cap?: Buffer | null = undefined;

  /**
   * Well-known xattrs (ABSENT_BITS in xattr-ops.ts) the lower inode was seen without, while its
   * ctime (ns, as a double: a later change is microseconds later, past its rounding) was
   * `absentCtime` (every xattr change moves ctime): `ls -l` asks for two of them per entry.
   */
  absent = 0;

  absentCtime = 0;

  /** Other names of a hard-linked inode seen so far (at most 8): one takes over when `name` goes. */
  links?: Array<{ parent: number; name: string }> = undefined;

  constructor(
    readonly nodeid: number,
    public parent: number,
    name: Uint8Array | string,
    readonly dev: number,
    readonly ino: number,
    /** S_IFMT bits. */
    readonly type: number,
  ) {
    this.key = typeof name === 'string' ? name : latin1(name);
  }

  /** Lower name (bytes) in the parent directory: a new Buffer on each read, for one call. */
  get name(): Buffer {
    return Buffer.from(this.key, 'latin1');
  }
}

/** Bytes as a latin1 string (one char per byte). */
export const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

export interface OpenState {
  file: EcryptfsFile;
  fh: FdLowerFile;
  refs: number;
  writable: boolean;
  /** The uid whose quota of lower descriptors this open counts against. */
  uid: number;
}

export interface FsOptions {
  readOnly?: boolean;
  encryptedView?: boolean;
  /** Called for things an admin should know (undecodable names, bad headers); never secrets. */
  log?: (msg: string) => void;
  /** Transfers up to this size use synchronous syscalls (see NodeLowerFsOptions). */
  syncIoMax?: number;
  /** Lower descriptors (open files and directory streams) one non-root user may hold. */
  perUserFds?: number;
  /** Directory descriptors kept open for lookups (LRU). */
  dirCache?: number;
}

export const ROOT = 1;
