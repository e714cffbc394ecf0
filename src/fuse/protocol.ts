/**
 * The FUSE kernel protocol (linux include/uapi/linux/fuse.h, spoken at 7.31): opcodes, flags and
 * little-endian encoders/decoders of the structs we exchange on /dev/fuse. Pure: buffers in,
 * buffers or typed records out, no I/O.
 */

export const FUSE_KERNEL_VERSION = 7;
/** The minor we reply with; the kernel then uses the 7.31 struct layouts. */
export const FUSE_KERNEL_MINOR_VERSION = 31;
export const FUSE_ROOT_ID = 1;

export enum Opcode {
  LOOKUP = 1,
  FORGET = 2,
  GETATTR = 3,
  SETATTR = 4,
  READLINK = 5,
  SYMLINK = 6,
  MKNOD = 8,
  MKDIR = 9,
  UNLINK = 10,
  RMDIR = 11,
  RENAME = 12,
  LINK = 13,
  OPEN = 14,
  READ = 15,
  WRITE = 16,
  STATFS = 17,
  RELEASE = 18,
  FSYNC = 20,
  SETXATTR = 21,
  GETXATTR = 22,
  LISTXATTR = 23,
  REMOVEXATTR = 24,
  FLUSH = 25,
  INIT = 26,
  OPENDIR = 27,
  READDIR = 28,
  RELEASEDIR = 29,
  FSYNCDIR = 30,
  GETLK = 31,
  SETLK = 32,
  SETLKW = 33,
  ACCESS = 34,
  CREATE = 35,
  INTERRUPT = 36,
  BMAP = 37,
  DESTROY = 38,
  IOCTL = 39,
  POLL = 40,
  NOTIFY_REPLY = 41,
  BATCH_FORGET = 42,
  FALLOCATE = 43,
  READDIRPLUS = 44,
  RENAME2 = 45,
  LSEEK = 46,
  COPY_FILE_RANGE = 47,
  SYNCFS = 50,
}

/** INIT flags (fuse_init_in/out.flags). */
export const InitFlags = {
  ASYNC_READ: 1 << 0,
  POSIX_LOCKS: 1 << 1,
  ATOMIC_O_TRUNC: 1 << 3,
  EXPORT_SUPPORT: 1 << 4,
  BIG_WRITES: 1 << 5,
  DONT_MASK: 1 << 6,
  FLOCK_LOCKS: 1 << 10,
  AUTO_INVAL_DATA: 1 << 12,
  DO_READDIRPLUS: 1 << 13,
  READDIRPLUS_AUTO: 1 << 14,
  ASYNC_DIO: 1 << 15,
  WRITEBACK_CACHE: 1 << 16,
  PARALLEL_DIROPS: 1 << 18,
  HANDLE_KILLPRIV: 1 << 19,
  POSIX_ACL: 1 << 20,
  MAX_PAGES: 1 << 22,
  CACHE_SYMLINKS: 1 << 23,
  HANDLE_KILLPRIV_V2: 1 << 28,
} as const;

/** fuse_setattr_in.valid bits. */
export const Fattr = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  FH: 1 << 6,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
  LOCKOWNER: 1 << 9,
  CTIME: 1 << 10,
  /** HANDLE_KILLPRIV_V2: a truncate by a caller without CAP_FSETID. */
  KILL_SUIDGID: 1 << 11,
} as const;

/** fuse_write_in.write_flags: HANDLE_KILLPRIV_V2, a write by a caller without CAP_FSETID. */
export const WRITE_KILL_SUIDGID = 1 << 2;
/** fuse_open_in / fuse_create_in open_flags: HANDLE_KILLPRIV_V2, an O_TRUNC open by a caller without CAP_FSETID. */
export const OPEN_KILL_SUIDGID = 1 << 0;

/** fuse_out_header.error of a notification (unique 0): invalidate an inode's cached attributes and pages. */
export const NOTIFY_INVAL_INODE = 2;

/** fuse_open_out.open_flags. */
export const FopenFlags = {
  DIRECT_IO: 1 << 0,
  KEEP_CACHE: 1 << 1,
  NONSEEKABLE: 1 << 2,
  CACHE_DIR: 1 << 3,
} as const;

export const GETATTR_FH = 1 << 0;
export const FSYNC_FDATASYNC = 1 << 0;
export const RELEASE_FLUSH = 1 << 0;

export const IN_HEADER_SIZE = 40;
export const OUT_HEADER_SIZE = 16;
export const ATTR_SIZE = 88;
export const ENTRY_OUT_SIZE = 40 + ATTR_SIZE;
export const ATTR_OUT_SIZE = 16 + ATTR_SIZE;
export const OPEN_OUT_SIZE = 16;
export const INIT_OUT_SIZE = 64;
export const STATFS_OUT_SIZE = 80;
export const DIRENT_HEADER_SIZE = 24;
export const WRITE_IN_SIZE = 40;

/** A request that does not parse: too short, bad length, unterminated name. */
export class FuseProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FuseProtocolError';
  }
}

export interface InHeader {
  len: number;
  opcode: number;
  unique: bigint;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
}

/** Numbers as the kernel sends them; u64 that cannot exceed 2^53 in practice become numbers. */
function u64(b: Buffer, off: number): number {
  // Two 32-bit halves, not a BigInt per field (each request has several); one rounding either way.
  return b.readUInt32LE(off) + b.readUInt32LE(off + 4) * 0x1_0000_0000;
}

export function decodeInHeader(buf: Buffer): InHeader {
  if (buf.length < IN_HEADER_SIZE) throw new FuseProtocolError(`request of ${buf.length} bytes is shorter than the header`);
  const len = buf.readUInt32LE(0);
  if (len < IN_HEADER_SIZE || len > buf.length) {
    throw new FuseProtocolError(`request length ${len} does not match the ${buf.length} bytes read`);
  }
  return {
    len,
    opcode: buf.readUInt32LE(4),
    unique: buf.readBigUInt64LE(8),
    nodeid: u64(buf, 16),
    uid: buf.readUInt32LE(24),
    gid: buf.readUInt32LE(28),
    pid: buf.readUInt32LE(32),
  };
}

/** Reads fixed fields and NUL-terminated names from a request body, with bounds checks. */
export class BodyReader {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  need(n: number, what: string): void {
    if (this.pos + n > this.buf.length) {
      throw new FuseProtocolError(`request body too short for ${what}: ${this.buf.length - this.pos} of ${n} bytes`);
    }
  }
  u32(): number {
    this.need(4, 'u32');
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  u64(): number {
    this.need(8, 'u64');
    const v = u64(this.buf, this.pos);
    this.pos += 8;
    return v;
  }
  u64big(): bigint {
    this.need(8, 'u64');
    const v = this.buf.readBigUInt64LE(this.pos);
    this.pos += 8;
    return v;
  }
  skip(n: number): void {
    this.need(n, 'padding');
    this.pos += n;
  }
  /** A NUL-terminated name, returned as a copy so the read buffer can be reused. */
  cstring(): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw new FuseProtocolError('name is not NUL-terminated');
    const s = this.buf.toString('utf8', this.pos, end);
    this.pos = end + 1;
    return s;
  }
  /** A NUL-terminated file name as bytes (Linux names need not be UTF-8), copied. */
  name(): Buffer {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) throw new FuseProtocolError('name is not NUL-terminated');
    const b = Buffer.from(this.buf.subarray(this.pos, end));
    this.pos = end + 1;
    return b;
  }
  /** The next n bytes, not copied. */
  bytes(n: number): Buffer {
    this.need(n, 'data');
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  rest(): Buffer {
    const b = this.buf.subarray(this.pos);
    this.pos = this.buf.length;
    return b;
  }
}

export interface InitIn {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
}
export interface SetattrIn {
  valid: number;
  fh: number;
  size: number;
  atime: number;
  mtime: number;
  ctime: number;
  atimensec: number;
  mtimensec: number;
  ctimensec: number;
  mode: number;
  uid: number;
  gid: number;
}
export interface ReadIn {
  fh: number;
  offset: number;
  size: number;
  readFlags: number;
  lockOwner: bigint;
  flags: number;
}
export interface WriteIn {
  fh: number;
  offset: number;
  size: number;
  writeFlags: number;
  lockOwner: bigint;
  flags: number;
  data: Buffer;
}
export interface LkIn {
  fh: number;
  owner: bigint;
  start: bigint;
  end: bigint;
  type: number;
  pid: number;
  lkFlags: number;
}

/** Every request body we understand, decoded; `unknown` keeps the opcode for an ENOSYS reply. */
export type Request =
  | { op: Opcode.INIT; arg: InitIn }
  | { op: Opcode.DESTROY }
  | { op: Opcode.LOOKUP | Opcode.UNLINK | Opcode.RMDIR; name: Buffer }
  | { op: Opcode.FORGET; nlookup: number }
  | { op: Opcode.BATCH_FORGET; items: { nodeid: number; nlookup: number }[] }
  | { op: Opcode.INTERRUPT; target: bigint }
  | { op: Opcode.GETATTR; getattrFlags: number; fh: number }
  | { op: Opcode.SETATTR; arg: SetattrIn }
  | { op: Opcode.READLINK }
  | { op: Opcode.SYMLINK; name: Buffer; target: Buffer }
  | { op: Opcode.MKNOD; mode: number; rdev: number; umask: number; name: Buffer }
  | { op: Opcode.MKDIR; mode: number; umask: number; name: Buffer }
  | { op: Opcode.RENAME; newdir: number; flags: number; name: Buffer; newname: Buffer }
  | { op: Opcode.LINK; oldnodeid: number; name: Buffer }
  | { op: Opcode.OPEN | Opcode.OPENDIR; flags: number; openFlags: number }
  | { op: Opcode.READ | Opcode.READDIR | Opcode.READDIRPLUS; arg: ReadIn }
  | { op: Opcode.WRITE; arg: WriteIn }
  | { op: Opcode.STATFS }
  | { op: Opcode.RELEASE | Opcode.RELEASEDIR; fh: number; flags: number; releaseFlags: number; lockOwner: bigint }
  | { op: Opcode.FSYNC | Opcode.FSYNCDIR; fh: number; fsyncFlags: number }
  | { op: Opcode.FLUSH; fh: number; lockOwner: bigint }
  | { op: Opcode.SETXATTR; flags: number; name: string; value: Buffer }
  | { op: Opcode.GETXATTR; size: number; name: string }
  | { op: Opcode.LISTXATTR; size: number }
  | { op: Opcode.REMOVEXATTR; name: string }
  | { op: Opcode.ACCESS; mask: number }
  | { op: Opcode.CREATE; flags: number; mode: number; umask: number; openFlags: number; name: Buffer }
  | { op: Opcode.GETLK | Opcode.SETLK | Opcode.SETLKW; arg: LkIn }
  | { op: Opcode.FALLOCATE; fh: number; offset: number; length: number; mode: number }
  | { op: Opcode.LSEEK; fh: number; offset: number; whence: number }
  | { op: 'unknown'; opcode: number };

export interface ParsedRequest {
  header: InHeader;
  req: Request;
}

/**
 * Parse one request as read from /dev/fuse. Throws FuseProtocolError (never anything else) on
 * malformed input. Names are copied; WRITE and SETXATTR data stay views into `buf`.
 */
export function parseRequest(buf: Buffer): ParsedRequest {
  const header = decodeInHeader(buf);
  const r = new BodyReader(buf.subarray(IN_HEADER_SIZE, header.len));
  try {
    return { header, req: parseBody(header.opcode, r) };
  } catch (e) {
    if (e instanceof FuseProtocolError) throw e;
    // e.g. a RangeError from Buffer reads: keep the promise that only typed errors escape.
    throw new FuseProtocolError(`opcode ${header.opcode}: ${(e as Error).message}`);
  }
}

function parseBody(opcode: number, r: BodyReader): Request {
  switch (opcode) {
    case Opcode.INIT: {
      const major = r.u32();
      const minor = r.u32();
      const maxReadahead = r.u32();
      const flags = r.u32();
      return { op: opcode, arg: { major, minor, maxReadahead, flags } };
    }
    case Opcode.DESTROY:
    case Opcode.READLINK:
    case Opcode.STATFS:
      return { op: opcode };
    case Opcode.LOOKUP:
    case Opcode.UNLINK:
    case Opcode.RMDIR:
      return { op: opcode, name: r.name() };
    case Opcode.REMOVEXATTR:
      return { op: opcode, name: r.cstring() };
    case Opcode.FORGET:
      return { op: opcode, nlookup: r.u64() };
    case Opcode.BATCH_FORGET: {
      const count = r.u32();
      r.skip(4);
      r.need(count * 16, 'forget list');
      const items: { nodeid: number; nlookup: number }[] = [];
      for (let i = 0; i < count; i++) items.push({ nodeid: r.u64(), nlookup: r.u64() });
      return { op: opcode, items };
    }
    case Opcode.INTERRUPT:
      return { op: opcode, target: r.u64big() };
    case Opcode.GETATTR: {
      const getattrFlags = r.u32();
      r.skip(4);
      return { op: opcode, getattrFlags, fh: r.u64() };
    }
    case Opcode.SETATTR: {
      const valid = r.u32();
      r.skip(4);
      const fh = r.u64();
      const size = r.u64();
      r.skip(8); // lock_owner
      const atime = r.u64();
      const mtime = r.u64();
      const ctime = r.u64();
      const atimensec = r.u32();
      const mtimensec = r.u32();
      const ctimensec = r.u32();
      const mode = r.u32();
      r.skip(4);
      const uid = r.u32();
      const gid = r.u32();
      return {
        op: opcode,
        arg: { valid, fh, size, atime, mtime, ctime, atimensec, mtimensec, ctimensec, mode, uid, gid },
      };
    }
    case Opcode.SYMLINK: {
      const name = r.name();
      return { op: opcode, name, target: r.name() };
    }
    case Opcode.MKNOD: {
      const mode = r.u32();
      const rdev = r.u32();
      const umask = r.u32();
      r.skip(4);
      return { op: opcode, mode, rdev, umask, name: r.name() };
    }
    case Opcode.MKDIR: {
      const mode = r.u32();
      const umask = r.u32();
      return { op: opcode, mode, umask, name: r.name() };
    }
    case Opcode.RENAME: {
      const newdir = r.u64();
      const name = r.name();
      return { op: Opcode.RENAME, newdir, flags: 0, name, newname: r.name() };
    }
    case Opcode.RENAME2: {
      const newdir = r.u64();
      const flags = r.u32();
      r.skip(4);
      const name = r.name();
      return { op: Opcode.RENAME, newdir, flags, name, newname: r.name() };
    }
    case Opcode.LINK: {
      const oldnodeid = r.u64();
      return { op: opcode, oldnodeid, name: r.name() };
    }
    case Opcode.OPEN:
    case Opcode.OPENDIR: {
      const flags = r.u32();
      return { op: opcode, flags, openFlags: r.u32() };
    }
    case Opcode.READ:
    case Opcode.READDIR:
    case Opcode.READDIRPLUS: {
      const fh = r.u64();
      const offset = r.u64();
      const size = r.u32();
      const readFlags = r.u32();
      const lockOwner = r.u64big();
      const flags = r.u32();
      return { op: opcode, arg: { fh, offset, size, readFlags, lockOwner, flags } };
    }
    case Opcode.WRITE: {
      const fh = r.u64();
      const offset = r.u64();
      const size = r.u32();
      const writeFlags = r.u32();
      const lockOwner = r.u64big();
      const flags = r.u32();
      r.skip(4);
      return { op: opcode, arg: { fh, offset, size, writeFlags, lockOwner, flags, data: r.bytes(size) } };
    }
    case Opcode.RELEASE:
    case Opcode.RELEASEDIR: {
      const fh = r.u64();
      const flags = r.u32();
      const releaseFlags = r.u32();
      return { op: opcode, fh, flags, releaseFlags, lockOwner: r.u64big() };
    }
    case Opcode.FSYNC:
    case Opcode.FSYNCDIR: {
      const fh = r.u64();
      return { op: opcode, fh, fsyncFlags: r.u32() };
    }
    case Opcode.FLUSH: {
      const fh = r.u64();
      r.skip(8);
      return { op: opcode, fh, lockOwner: r.u64big() };
    }
    case Opcode.SETXATTR: {
      // Without FUSE_SETXATTR_EXT the kernel sends the 8-byte compat struct.
      const size = r.u32();
      const flags = r.u32();
      const name = r.cstring();
      return { op: opcode, flags, name, value: r.bytes(size) };
    }
    case Opcode.GETXATTR: {
      const size = r.u32();
      r.skip(4);
      return { op: opcode, size, name: r.cstring() };
    }
    case Opcode.LISTXATTR: {
      const size = r.u32();
      return { op: opcode, size };
    }
    case Opcode.ACCESS:
      return { op: opcode, mask: r.u32() };
    case Opcode.CREATE: {
      const flags = r.u32();
      const mode = r.u32();
      const umask = r.u32();
      const openFlags = r.u32();
      return { op: opcode, flags, mode, umask, openFlags, name: r.name() };
    }
    case Opcode.GETLK:
    case Opcode.SETLK:
    case Opcode.SETLKW: {
      const fh = r.u64();
      const owner = r.u64big();
      const start = r.u64big();
      const end = r.u64big();
      const type = r.u32();
      const pid = r.u32();
      return { op: opcode, arg: { fh, owner, start, end, type, pid, lkFlags: r.u32() } };
    }
    case Opcode.FALLOCATE: {
      const fh = r.u64();
      const offset = r.u64();
      const length = r.u64();
      return { op: opcode, fh, offset, length, mode: r.u32() };
    }
    case Opcode.LSEEK: {
      const fh = r.u64();
      const offset = r.u64();
      return { op: opcode, fh, offset, whence: r.u32() };
    }
    default:
      return { op: 'unknown', opcode };
  }
}

// ---- replies ----

type Num = number | bigint;

/** File attributes; numeric fields take number or bigint so fs.Stats and fs.BigIntStats fit. */
export interface Attr {
  ino: Num;
  mode: Num;
  nlink: Num;
  uid: Num;
  gid: Num;
  rdev?: Num;
  size: Num;
  blocks?: Num;
  blksize?: Num;
  atimeMs: Num;
  mtimeMs: Num;
  ctimeMs: Num;
  /** Nanosecond times (fs.BigIntStats has them); preferred over the *Ms fields when present. */
  atimeNs?: bigint;
  mtimeNs?: bigint;
  ctimeNs?: bigint;
}

const NS_PER_S = 1_000_000_000n;

function splitTime(ms: Num, ns: bigint | undefined): [bigint, number] {
  if (ns === undefined) {
    if (typeof ms === 'bigint') ns = ms * 1_000_000n;
    else {
      const whole = Math.floor(ms);
      ns = BigInt(whole) * 1_000_000n + BigInt(Math.round((ms - whole) * 1e6));
    }
  }
  let sec = ns / NS_PER_S;
  let nsec = ns % NS_PER_S;
  if (nsec < 0n) {
    sec -= 1n;
    nsec += NS_PER_S;
  }
  return [sec, Number(nsec)];
}

function big(v: Num | undefined): bigint {
  if (v === undefined) return 0n;
  return typeof v === 'bigint' ? v : BigInt(Math.trunc(v));
}
function u32(v: Num | undefined): number {
  // ToUint32 truncates and wraps modulo 2^32 as the BigInt mask does.
  if (typeof v === 'number') return v >>> 0;
  return Number(big(v) & 0xffffffffn);
}
/**
 * A u64 field. Attributes and replies are numbers almost always: written as two 32-bit halves
 * without the BigInts (a reply's attributes made ~20) that cost more than the rest of a GETATTR.
 */
function writeU64(b: Buffer, off: number, v: Num | undefined): void {
  if (typeof v === 'number' && v >= 0 && v <= Number.MAX_SAFE_INTEGER) {
    const t = Math.trunc(v);
    b.writeUInt32LE(t >>> 0, off);
    b.writeUInt32LE(Math.floor(t / 0x1_0000_0000), off + 4);
    return;
  }
  b.writeBigUInt64LE(big(v), off);
}

export function encodeAttr(b: Buffer, off: number, a: Attr): void {
  writeU64(b, off, a.ino);
  writeU64(b, off + 8, a.size);
  if (a.blocks !== undefined) writeU64(b, off + 16, a.blocks);
  else if (typeof a.size === 'number' && a.size >= 0 && a.size <= Number.MAX_SAFE_INTEGER - 511) writeU64(b, off + 16, Math.floor((Math.trunc(a.size) + 511) / 512));
  else b.writeBigUInt64LE((big(a.size) + 511n) / 512n, off + 16);
  const [as, an] = splitTime(a.atimeMs, a.atimeNs);
  const [ms, mn] = splitTime(a.mtimeMs, a.mtimeNs);
  const [cs, cn] = splitTime(a.ctimeMs, a.ctimeNs);
  b.writeBigUInt64LE(BigInt.asUintN(64, as), off + 24);
  b.writeBigUInt64LE(BigInt.asUintN(64, ms), off + 32);
  b.writeBigUInt64LE(BigInt.asUintN(64, cs), off + 40);
  b.writeUInt32LE(an, off + 48);
  b.writeUInt32LE(mn, off + 52);
  b.writeUInt32LE(cn, off + 56);
  b.writeUInt32LE(u32(a.mode), off + 60);
  b.writeUInt32LE(u32(a.nlink), off + 64);
  b.writeUInt32LE(u32(a.uid), off + 68);
  b.writeUInt32LE(u32(a.gid), off + 72);
  b.writeUInt32LE(u32(a.rdev), off + 76);
  b.writeUInt32LE(u32(a.blksize), off + 80);
  b.writeUInt32LE(0, off + 84);
}

/** The fields of struct fuse_attr back as numbers (for tests and debugging). */
export function decodeAttr(b: Buffer, off = 0) {
  return {
    ino: b.readBigUInt64LE(off),
    size: b.readBigUInt64LE(off + 8),
    blocks: b.readBigUInt64LE(off + 16),
    atime: b.readBigUInt64LE(off + 24),
    mtime: b.readBigUInt64LE(off + 32),
    ctime: b.readBigUInt64LE(off + 40),
    atimensec: b.readUInt32LE(off + 48),
    mtimensec: b.readUInt32LE(off + 52),
    ctimensec: b.readUInt32LE(off + 56),
    mode: b.readUInt32LE(off + 60),
    nlink: b.readUInt32LE(off + 64),
    uid: b.readUInt32LE(off + 68),
    gid: b.readUInt32LE(off + 72),
    rdev: b.readUInt32LE(off + 76),
    blksize: b.readUInt32LE(off + 80),
  };
}

function timeout(seconds: number): [number, number] {
  const s = Math.max(0, seconds);
  const whole = Math.floor(s);
  return [whole, Math.min(999_999_999, Math.round((s - whole) * 1e9))];
}

export function encodeEntryOut(
  nodeid: number,
  generation: number,
  entryTimeout: number,
  attrTimeout: number,
  attr: Attr,
): Buffer {
  const b = Buffer.alloc(ENTRY_OUT_SIZE);
  writeEntryOut(b, 0, nodeid, generation, entryTimeout, attrTimeout, attr);
  return b;
}

function writeEntryOut(
  b: Buffer,
  off: number,
  nodeid: number,
  generation: number,
  entryTimeout: number,
  attrTimeout: number,
  attr: Attr,
): void {
  const [es, en] = timeout(entryTimeout);
  const [as, an] = timeout(attrTimeout);
  writeU64(b, off, nodeid);
  writeU64(b, off + 8, generation);
  writeU64(b, off + 16, es);
  writeU64(b, off + 24, as);
  b.writeUInt32LE(en, off + 32);
  b.writeUInt32LE(an, off + 36);
  encodeAttr(b, off + 40, attr);
}

export function encodeAttrOut(attrTimeout: number, attr: Attr): Buffer {
  const b = Buffer.alloc(ATTR_OUT_SIZE);
  const [s, n] = timeout(attrTimeout);
  writeU64(b, 0, s);
  b.writeUInt32LE(n, 8);
  encodeAttr(b, 16, attr);
  return b;
}

export function encodeOpenOut(fh: number, openFlags: number): Buffer {
  const b = Buffer.alloc(OPEN_OUT_SIZE);
  writeU64(b, 0, fh);
  b.writeUInt32LE(openFlags, 8);
  return b;
}

export interface InitOut {
  major: number;
  minor: number;
  maxReadahead: number;
  flags: number;
  maxBackground: number;
  congestionThreshold: number;
  maxWrite: number;
  timeGran: number;
  maxPages: number;
}

export function encodeInitOut(o: InitOut): Buffer {
  const b = Buffer.alloc(INIT_OUT_SIZE);
  b.writeUInt32LE(o.major, 0);
  b.writeUInt32LE(o.minor, 4);
  b.writeUInt32LE(o.maxReadahead, 8);
  b.writeUInt32LE(o.flags >>> 0, 12);
  b.writeUInt16LE(o.maxBackground, 16);
  b.writeUInt16LE(o.congestionThreshold, 18);
  b.writeUInt32LE(o.maxWrite, 20);
  b.writeUInt32LE(o.timeGran, 24);
  b.writeUInt16LE(o.maxPages, 28);
  return b;
}

export function decodeInitOut(b: Buffer): InitOut {
  return {
    major: b.readUInt32LE(0),
    minor: b.readUInt32LE(4),
    maxReadahead: b.readUInt32LE(8),
    flags: b.readUInt32LE(12),
    maxBackground: b.readUInt16LE(16),
    congestionThreshold: b.readUInt16LE(18),
    maxWrite: b.readUInt32LE(20),
    timeGran: b.readUInt32LE(24),
    maxPages: b.readUInt16LE(28),
  };
}

export interface StatFs {
  blocks: Num;
  bfree: Num;
  bavail: Num;
  files: Num;
  ffree: Num;
  bsize: Num;
  namelen: Num;
  frsize?: Num;
}

export function encodeStatfsOut(s: StatFs): Buffer {
  const b = Buffer.alloc(STATFS_OUT_SIZE);
  b.writeBigUInt64LE(big(s.blocks), 0);
  b.writeBigUInt64LE(big(s.bfree), 8);
  b.writeBigUInt64LE(big(s.bavail), 16);
  b.writeBigUInt64LE(big(s.files), 24);
  b.writeBigUInt64LE(big(s.ffree), 32);
  b.writeUInt32LE(u32(s.bsize), 40);
  b.writeUInt32LE(u32(s.namelen), 44);
  b.writeUInt32LE(u32(s.frsize ?? s.bsize), 48);
  return b;
}

export function encodeWriteOut(size: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(size, 0);
  return b;
}

/** fuse_getxattr_out / listxattr size query reply. */
export function encodeXattrSizeOut(size: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(size, 0);
  return b;
}

export function encodeLseekOut(offset: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(offset), 0);
  return b;
}

export function encodeOutHeader(len: number, error: number, unique: bigint): Buffer {
  return writeOutHeader(Buffer.alloc(OUT_HEADER_SIZE), len, error, unique);
}

/** fuse_out_header into `b` (error negative). The kernel's request ids count up from 1: written as a number, without BigInt arithmetic. */
export function writeOutHeader(b: Buffer, len: number, error: number, unique: bigint): Buffer {
  b.writeUInt32LE(len, 0);
  b.writeInt32LE(error, 4);
  const u = Number(unique);
  writeU64(b, 8, u <= Number.MAX_SAFE_INTEGER ? u : unique);
  return b;
}

/** Record size of a fuse_dirent with a name of `namelen` bytes (8-byte aligned). */
export function direntSize(namelen: number): number {
  return (DIRENT_HEADER_SIZE + namelen + 7) & ~7;
}

/**
 * Append one fuse_dirent at `pos`. Returns the new position, or -1 when the record does not fit
 * (the kernel's buffer size is the limit; the rest is asked for in the next READDIR).
 */
export function writeDirent(b: Buffer, pos: number, ino: Num, off: number, type: number, name: Buffer): number {
  const size = direntSize(name.length);
  if (pos + size > b.length) return -1;
  b.writeBigUInt64LE(big(ino), pos);
  b.writeBigUInt64LE(BigInt(off), pos + 8);
  b.writeUInt32LE(name.length, pos + 16);
  b.writeUInt32LE(type, pos + 20);
  name.copy(b, pos + DIRENT_HEADER_SIZE);
  b.fill(0, pos + DIRENT_HEADER_SIZE + name.length, pos + size);
  return pos + size;
}

/** Append one fuse_direntplus (entry_out + dirent) at `pos`, or return -1 when it does not fit. */
export function writeDirentPlus(
  b: Buffer,
  pos: number,
  entry: { nodeid: number; generation: number; entryTimeout: number; attrTimeout: number; attr: Attr } | null,
  ino: Num,
  off: number,
  type: number,
  name: Buffer,
): number {
  const size = ENTRY_OUT_SIZE + direntSize(name.length);
  if (pos + size > b.length) return -1;
  if (entry) writeEntryOut(b, pos, entry.nodeid, entry.generation, entry.entryTimeout, entry.attrTimeout, entry.attr);
  else b.fill(0, pos, pos + ENTRY_OUT_SIZE); // nodeid 0: the kernel only fills the dirent
  return writeDirent(b, pos + ENTRY_OUT_SIZE, ino, off, type, name);
}

export interface Dirent {
  ino: bigint;
  off: bigint;
  type: number;
  name: string;
}

export function decodeDirents(b: Buffer): Dirent[] {
  const out: Dirent[] = [];
  let pos = 0;
  while (pos + DIRENT_HEADER_SIZE <= b.length) {
    const namelen = b.readUInt32LE(pos + 16);
    out.push({
      ino: b.readBigUInt64LE(pos),
      off: b.readBigUInt64LE(pos + 8),
      type: b.readUInt32LE(pos + 20),
      name: b.toString('utf8', pos + DIRENT_HEADER_SIZE, pos + DIRENT_HEADER_SIZE + namelen),
    });
    pos += direntSize(namelen);
  }
  return out;
}

/** Build a request as the kernel would (for tests and tools): header + body. */
export function encodeRequest(
  opcode: number,
  unique: bigint,
  nodeid: number,
  body: Buffer,
  ctx: { uid?: number; gid?: number; pid?: number } = {},
): Buffer {
  const b = Buffer.alloc(IN_HEADER_SIZE + body.length);
  b.writeUInt32LE(b.length, 0);
  b.writeUInt32LE(opcode, 4);
  b.writeBigUInt64LE(unique, 8);
  b.writeBigUInt64LE(BigInt(nodeid), 16);
  b.writeUInt32LE(ctx.uid ?? 0, 24);
  b.writeUInt32LE(ctx.gid ?? 0, 28);
  b.writeUInt32LE(ctx.pid ?? 0, 32);
  body.copy(b, IN_HEADER_SIZE);
  return b;
}
