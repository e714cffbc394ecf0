/**
 * The FUSE kernel ABI (include/uapi/linux/fuse.h, protocol 7.31): opcodes, flags and the binary
 * layout of the structs this server reads and writes. Little-endian, as on every Linux FUSE host.
 */
export const FUSE_KERNEL_VERSION = 7;
export const FUSE_KERNEL_MINOR_VERSION = 31;
export const ROOT_ID = 1;

export const Op = {
  LOOKUP: 1, FORGET: 2, GETATTR: 3, SETATTR: 4, READLINK: 5, SYMLINK: 6, MKNOD: 8, MKDIR: 9,
  UNLINK: 10, RMDIR: 11, RENAME: 12, LINK: 13, OPEN: 14, READ: 15, WRITE: 16, STATFS: 17,
  RELEASE: 18, FSYNC: 20, SETXATTR: 21, GETXATTR: 22, LISTXATTR: 23, REMOVEXATTR: 24, FLUSH: 25,
  INIT: 26, OPENDIR: 27, READDIR: 28, RELEASEDIR: 29, FSYNCDIR: 30, GETLK: 31, SETLK: 32,
  SETLKW: 33, ACCESS: 34, CREATE: 35, INTERRUPT: 36, BMAP: 37, DESTROY: 38, IOCTL: 39, POLL: 40,
  NOTIFY_REPLY: 41, BATCH_FORGET: 42, FALLOCATE: 43, READDIRPLUS: 44, RENAME2: 45, LSEEK: 46,
  COPY_FILE_RANGE: 47, SYNCFS: 50, TMPFILE: 51, STATX: 52,
} as const;

export const InitFlag = {
  ASYNC_READ: 1 << 0, POSIX_LOCKS: 1 << 1, ATOMIC_O_TRUNC: 1 << 3, EXPORT_SUPPORT: 1 << 4,
  BIG_WRITES: 1 << 5, DONT_MASK: 1 << 6, FLOCK_LOCKS: 1 << 10, AUTO_INVAL_DATA: 1 << 12,
  DO_READDIRPLUS: 1 << 13, ASYNC_DIO: 1 << 15, WRITEBACK_CACHE: 1 << 16, PARALLEL_DIROPS: 1 << 18,
  HANDLE_KILLPRIV: 1 << 19, MAX_PAGES: 1 << 22, CACHE_SYMLINKS: 1 << 23,
} as const;

export const Fattr = {
  MODE: 1 << 0, UID: 1 << 1, GID: 1 << 2, SIZE: 1 << 3, ATIME: 1 << 4, MTIME: 1 << 5, FH: 1 << 6,
  ATIME_NOW: 1 << 7, MTIME_NOW: 1 << 8, LOCKOWNER: 1 << 9, CTIME: 1 << 10,
} as const;

export const IN_HEADER_SIZE = 40;
export const OUT_HEADER_SIZE = 16;
export const ATTR_SIZE = 88;
export const ENTRY_OUT_SIZE = 40 + ATTR_SIZE;
export const ATTR_OUT_SIZE = 16 + ATTR_SIZE;
export const OPEN_OUT_SIZE = 16;
export const STATFS_OUT_SIZE = 80;
export const INIT_OUT_SIZE = 64;

export interface InHeader {
  len: number;
  opcode: number;
  unique: bigint;
  nodeid: number;
  uid: number;
  gid: number;
  pid: number;
}

/** A malformed request from the kernel (never expected; guards against a length field lying). */
export class ProtocolError extends Error {}

export function readInHeader(b: Buffer, n: number): InHeader {
  if (n < IN_HEADER_SIZE) throw new ProtocolError(`short request: ${n} bytes`);
  const len = b.readUInt32LE(0);
  if (len !== n) throw new ProtocolError(`request length ${len} but ${n} bytes read`);
  return {
    len,
    opcode: b.readUInt32LE(4),
    unique: b.readBigUInt64LE(8),
    nodeid: Number(b.readBigUInt64LE(16)),
    uid: b.readUInt32LE(24),
    gid: b.readUInt32LE(28),
    pid: b.readUInt32LE(32),
  };
}

/** Attributes as the filesystem reports them (times in ms since the epoch). */
export interface FuseAttr {
  ino: number;
  size: number;
  blocks: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  blksize: number;
}

function writeTime(b: Buffer, secOff: number, nsecOff: number, ms: number): void {
  const sec = Math.floor(ms / 1000);
  b.writeBigInt64LE(BigInt(sec), secOff);
  b.writeUInt32LE(Math.max(0, Math.min(999999999, Math.round((ms - sec * 1000) * 1e6))), nsecOff);
}

export function writeAttr(b: Buffer, off: number, a: FuseAttr): void {
  b.writeBigUInt64LE(BigInt(a.ino), off);
  b.writeBigUInt64LE(BigInt(a.size), off + 8);
  b.writeBigUInt64LE(BigInt(a.blocks), off + 16);
  writeTime(b, off + 24, off + 48, a.atimeMs);
  writeTime(b, off + 32, off + 52, a.mtimeMs);
  writeTime(b, off + 40, off + 56, a.ctimeMs);
  b.writeUInt32LE(a.mode >>> 0, off + 60);
  b.writeUInt32LE(a.nlink, off + 64);
  b.writeUInt32LE(a.uid, off + 68);
  b.writeUInt32LE(a.gid, off + 72);
  b.writeUInt32LE(a.rdev, off + 76);
  b.writeUInt32LE(a.blksize, off + 80);
  b.writeUInt32LE(0, off + 84);
}

export function entryOut(nodeid: number, a: FuseAttr, entryTimeout: number, attrTimeout: number): Buffer {
  const b = Buffer.alloc(ENTRY_OUT_SIZE);
  b.writeBigUInt64LE(BigInt(nodeid), 0);
  b.writeBigUInt64LE(0n, 8);
  b.writeBigUInt64LE(BigInt(Math.floor(entryTimeout)), 16);
  b.writeBigUInt64LE(BigInt(Math.floor(attrTimeout)), 24);
  b.writeUInt32LE(Math.round((entryTimeout % 1) * 1e9), 32);
  b.writeUInt32LE(Math.round((attrTimeout % 1) * 1e9), 36);
  writeAttr(b, 40, a);
  return b;
}

export function attrOut(a: FuseAttr, attrTimeout: number): Buffer {
  const b = Buffer.alloc(ATTR_OUT_SIZE);
  b.writeBigUInt64LE(BigInt(Math.floor(attrTimeout)), 0);
  b.writeUInt32LE(Math.round((attrTimeout % 1) * 1e9), 8);
  writeAttr(b, 16, a);
  return b;
}

export function openOut(fh: number, openFlags = 0): Buffer {
  const b = Buffer.alloc(OPEN_OUT_SIZE);
  b.writeBigUInt64LE(BigInt(fh), 0);
  b.writeUInt32LE(openFlags, 8);
  return b;
}

export interface StatfsInfo {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namelen: number;
  frsize: number;
}

export function statfsOut(s: StatfsInfo): Buffer {
  const b = Buffer.alloc(STATFS_OUT_SIZE);
  b.writeBigUInt64LE(BigInt(s.blocks), 0);
  b.writeBigUInt64LE(BigInt(s.bfree), 8);
  b.writeBigUInt64LE(BigInt(s.bavail), 16);
  b.writeBigUInt64LE(BigInt(s.files), 24);
  b.writeBigUInt64LE(BigInt(s.ffree), 32);
  b.writeUInt32LE(s.bsize, 40);
  b.writeUInt32LE(s.namelen, 44);
  b.writeUInt32LE(s.frsize, 48);
  return b;
}

const DT: Record<string, number> = { file: 8, dir: 4, symlink: 10, other: 0 };

/** Append one fuse_dirent to `parts` if it fits in `room`; returns bytes used (0 when full). */
export function direntSize(name: Buffer): number {
  return (24 + name.length + 7) & ~7;
}

export function writeDirent(b: Buffer, off: number, ino: number, nextOff: number, name: Buffer, type: string): number {
  const size = direntSize(name);
  b.writeBigUInt64LE(BigInt(ino), off);
  b.writeBigUInt64LE(BigInt(nextOff), off + 8);
  b.writeUInt32LE(name.length, off + 16);
  b.writeUInt32LE(DT[type] ?? 0, off + 20);
  name.copy(b, off + 24);
  b.fill(0, off + 24 + name.length, off + size);
  return size;
}

/** Read a NUL-terminated string at `off`; returns it and the offset after the NUL. */
export function cstring(b: Buffer, off: number, end: number): { s: Buffer; next: number } {
  const z = b.indexOf(0, off);
  if (z < 0 || z >= end) throw new ProtocolError('string not NUL-terminated');
  return { s: b.subarray(off, z), next: z + 1 };
}
