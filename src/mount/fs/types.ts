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
}

export interface Node {
  nodeid: number;
  parent: number;
  /** Lower name (bytes) in the parent directory. */
  name: Buffer;
  nlookup: number;
  dev: number;
  ino: number;
  /** S_IFMT bits. */
  type: number;
  /**
   * security.capability of the lower inode: null when known absent, undefined when not yet read.
   * The kernel asks for it before every write (to drop file capabilities), so it is read once.
   */
  cap?: Buffer | null;
  /** Other names of a hard-linked inode seen so far (at most 8): one takes over when `name` goes. */
  links?: Array<{ parent: number; name: Buffer }>;
}

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
