/**
 * The Linux system calls Node lacks, through koffi (a prebuilt FFI: no compiler at install).
 * Everything is synchronous and descriptor-relative; failures throw Node-style errors (code, errno,
 * syscall) so callers treat them like node:fs errors. Names are bytes (Buffer) or strings.
 *
 * setfsuid/setfsgid/setgroups are raw syscalls: they change only the calling thread's
 * credentials (glibc's setgroups would change every thread's), which is what per-request
 * credentials on the main thread need while the libuv pool keeps the daemon's own.
 */
import { constants as OSC } from 'node:os';
import { callError, lastErrno, libcLibrary, type SysCallError } from '../sys/libc.js';

export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const AT_REMOVEDIR = 0x200;
export const AT_EMPTY_PATH = 0x1000;
export const O_PATH = 0o10000000;
export const O_CLOEXEC = 0o2000000;
export const UTIME_NOW = (1 << 30) - 1;
export const UTIME_OMIT = (1 << 30) - 2;
export const RENAME_NOREPLACE = 1;
export const RENAME_EXCHANGE = 2;

type Name = string | Uint8Array;


interface Calls {
  openat(dir: number, name: Buffer, flags: number, mode: number): number;
  mkdirat(dir: number, name: Buffer, mode: number): number;
  mknodat(dir: number, name: Buffer, mode: number, dev: bigint): number;
  unlinkat(dir: number, name: Buffer, flags: number): number;
  renameat2(od: number, on: Buffer, nd: number, nn: Buffer, flags: number): number;
  linkat(od: number, on: Buffer, nd: number, nn: Buffer, flags: number): number;
  symlinkat(target: Buffer, dir: number, name: Buffer): number;
  readlinkat(dir: number, name: Buffer, buf: Buffer, size: number): number;
  fchownat(dir: number, name: Buffer, uid: number, gid: number, flags: number): number;
  fchmod(fd: number, mode: number): number;
  utimensat(dir: number, name: Buffer, times: BigInt64Array, flags: number): number;
  fgetxattr(fd: number, name: Buffer, buf: Buffer | null, size: number): number;
  fsetxattr(fd: number, name: Buffer, value: Uint8Array, size: number, flags: number): number;
  flistxattr(fd: number, buf: Buffer | null, size: number): number;
  fremovexattr(fd: number, name: Buffer): number;
  lgetxattr(path: Buffer, name: Buffer, buf: Buffer | null, size: number): number;
  lsetxattr(path: Buffer, name: Buffer, value: Uint8Array, size: number, flags: number): number;
  llistxattr(path: Buffer, buf: Buffer | null, size: number): number;
  lremovexattr(path: Buffer, name: Buffer): number;
  getxattr(path: Buffer, name: Buffer, buf: Buffer | null, size: number): number;
  setxattr(path: Buffer, name: Buffer, value: Uint8Array, size: number, flags: number): number;
  listxattr(path: Buffer, buf: Buffer | null, size: number): number;
  removexattr(path: Buffer, name: Buffer): number;
  fstatat(dir: number, name: Buffer, buf: Buffer, flags: number): number;
  lseek(fd: number, off: bigint, whence: number): bigint;
  posix_fadvise(fd: number, off: bigint, len: bigint, advice: number): number;
  syscall(nr: number, ...a: unknown[]): number;
  /** syscall(2) for cachestat (nr, fd, range, out, flags): prototyped as listxattrat below. */
  cachestat(nr: number, fd: number, range: BigUint64Array, out: BigUint64Array, flags: number): number;
  /** syscall(2) for listxattrat (nr, dir, name, at flags, buf, size): prototyped, so koffi parses no types per call. */
  listxattrat(nr: number, dir: number, name: Buffer, flags: number, buf: Buffer | null, size: number): number;
}

let calls: Calls | undefined;

function lib(): Calls {
  if (calls) return calls;
  const c = libcLibrary();
  const s = 'const uint8_t *';
  calls = {
    openat: c.func(`int openat(int, ${s}, int, uint32_t)`),
    mkdirat: c.func(`int mkdirat(int, ${s}, uint32_t)`),
    mknodat: c.func(`int mknodat(int, ${s}, uint32_t, uint64_t)`),
    unlinkat: c.func(`int unlinkat(int, ${s}, int)`),
    renameat2: c.func(`int renameat2(int, ${s}, int, ${s}, unsigned int)`),
    linkat: c.func(`int linkat(int, ${s}, int, ${s}, int)`),
    symlinkat: c.func(`int symlinkat(${s}, int, ${s})`),
    readlinkat: c.func(`long readlinkat(int, ${s}, _Out_ uint8_t *, size_t)`),
    fchownat: c.func(`int fchownat(int, ${s}, uint32_t, uint32_t, int)`),
    fchmod: c.func('int fchmod(int, uint32_t)'),
    utimensat: c.func(`int utimensat(int, ${s}, const int64_t *, int)`),
    fgetxattr: c.func(`long fgetxattr(int, ${s}, _Out_ uint8_t *, size_t)`),
    fsetxattr: c.func(`int fsetxattr(int, ${s}, const uint8_t *, size_t, int)`),
    flistxattr: c.func('long flistxattr(int, _Out_ uint8_t *, size_t)'),
    fremovexattr: c.func(`int fremovexattr(int, ${s})`),
    lgetxattr: c.func(`long lgetxattr(${s}, ${s}, _Out_ uint8_t *, size_t)`),
    lsetxattr: c.func(`int lsetxattr(${s}, ${s}, const uint8_t *, size_t, int)`),
    llistxattr: c.func(`long llistxattr(${s}, _Out_ uint8_t *, size_t)`),
    lremovexattr: c.func(`int lremovexattr(${s}, ${s})`),
    getxattr: c.func(`long getxattr(${s}, ${s}, _Out_ uint8_t *, size_t)`),
    setxattr: c.func(`int setxattr(${s}, ${s}, const uint8_t *, size_t, int)`),
    listxattr: c.func(`long listxattr(${s}, _Out_ uint8_t *, size_t)`),
    removexattr: c.func(`int removexattr(${s}, ${s})`),
    fstatat: c.func(`int fstatat(int, ${s}, _Out_ uint8_t *, int)`),
    lseek: c.func('int64_t lseek(int, int64_t, int)'),
    posix_fadvise: c.func('int posix_fadvise(int, int64_t, int64_t, int)'),
    syscall: c.func('long syscall(long, ...)'),
    listxattrat: c.func(`long syscall(long, int, ${s}, int, _Out_ uint8_t *, size_t)`),
    cachestat: c.func('long syscall(long, unsigned int, const uint64_t *, _Out_ uint64_t *, unsigned int)'),
  } as unknown as Calls;
  return calls;
}

export type SysError = SysCallError;

/**
 * A Node-style system error (sys/libc.ts callError: errno negative, as node:fs has it) naming the
 * file. Without a stack trace: a failed lower call is mostly an answer (ENOENT of a probe, ENODATA
 * of an absent xattr), and capturing the stack cost more than the syscall.
 */
export function sysError(syscall: string, errno: number, what?: Name): SysError {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return callError(syscall, errno, what === undefined ? '' : ` on '${Buffer.from(what).toString('utf8')}'`);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

function check(r: number, syscall: string, what?: Name): number {
  if (r < 0) throw sysError(syscall, lastErrno(), what);
  return r;
}

const scratch = [Buffer.alloc(4096), Buffer.alloc(4096)];
/**
 * NUL-terminated bytes of a name. Names up to 4 KiB go through one of two reused buffers (`slot`:
 * a call with two names uses both); the result is valid until the next cstr of that slot, which
 * is enough for the synchronous calls here.
 */
export function cstr(name: Name, slot = 0): Buffer {
  const len = typeof name === 'string' ? Buffer.byteLength(name, 'utf8') : name.byteLength;
  const b = len < 4096 ? scratch[slot] : Buffer.alloc(len + 1);
  if (typeof name === 'string') b.write(name, 0, 'utf8');
  else b.set(name, 0);
  b[len] = 0;
  const nul = b.indexOf(0);
  if (nul < len) throw sysError('path', OSC.errno.EINVAL, b.subarray(0, nul));
  return b;
}

/** `/proc/self/fd/N/name` (or `/proc/self/fd/N` without a name) as bytes for path-based calls. */
export function fdPath(fd: number, name?: Name): Buffer {
  const head = Buffer.from(`/proc/self/fd/${fd}`);
  if (name === undefined || name.length === 0) return head;
  return Buffer.concat([head, Buffer.from('/'), typeof name === 'string' ? Buffer.from(name) : name]);
}

export function openat(dir: number, name: Name, flags: number, mode = 0): number {
  return check(lib().openat(dir, cstr(name), flags, mode), 'openat', name);
}
export function mkdirat(dir: number, name: Name, mode: number): void {
  check(lib().mkdirat(dir, cstr(name), mode), 'mkdirat', name);
}
export function mknodat(dir: number, name: Name, mode: number, dev = 0): void {
  check(lib().mknodat(dir, cstr(name), mode, BigInt(dev)), 'mknodat', name);
}
export function unlinkat(dir: number, name: Name, flags = 0): void {
  check(lib().unlinkat(dir, cstr(name), flags), flags & AT_REMOVEDIR ? 'rmdir' : 'unlinkat', name);
}
export function renameat2(od: number, on: Name, nd: number, nn: Name, flags = 0): void {
  check(lib().renameat2(od, cstr(on), nd, cstr(nn, 1), flags), 'renameat2', on);
}
export function linkat(od: number, on: Name, nd: number, nn: Name, flags = 0): void {
  check(lib().linkat(od, cstr(on), nd, cstr(nn, 1), flags), 'linkat', nn);
}
export function symlinkat(target: Name, dir: number, name: Name): void {
  check(lib().symlinkat(cstr(target), dir, cstr(name, 1)), 'symlinkat', name);
}
export function readlinkat(dir: number, name: Name): Buffer {
  const buf = Buffer.allocUnsafe(4096);
  const n = check(lib().readlinkat(dir, cstr(name), buf, buf.length), 'readlinkat', name);
  return Buffer.from(buf.subarray(0, n));
}
/** chown without following: name '' with AT_EMPTY_PATH acts on `dir` itself (an O_PATH fd works). */
export function fchownat(dir: number, name: Name, uid: number, gid: number, flags = AT_SYMLINK_NOFOLLOW): void {
  check(lib().fchownat(dir, cstr(name), uid >>> 0, gid >>> 0, flags), 'fchownat', name);
}
export function fchmod(fd: number, mode: number): void {
  check(lib().fchmod(fd, mode), 'fchmod');
}
/**
 * Set times in integer nanoseconds (undefined leaves a time as it is, 'now' is the clock).
 * With name '' and AT_EMPTY_PATH... Linux has no such flag for utimensat; a NULL-like call on
 * /proc/self/fd/N does the same, so pass dir = AT_FDCWD and name = fdPath(fd).
 */
export function utimensat(dir: number, name: Name, atimeNs: bigint | 'now' | undefined, mtimeNs: bigint | 'now' | undefined, flags = AT_SYMLINK_NOFOLLOW): void {
  const t = new BigInt64Array(4);
  const put = (i: number, v: bigint | 'now' | undefined) => {
    if (v === undefined) t[i * 2 + 1] = BigInt(UTIME_OMIT);
    else if (v === 'now') t[i * 2 + 1] = BigInt(UTIME_NOW);
    else {
      t[i * 2] = v / 1000000000n;
      t[i * 2 + 1] = v % 1000000000n;
      if (t[i * 2 + 1] < 0n) {
        t[i * 2] -= 1n;
        t[i * 2 + 1] += 1000000000n;
      }
    }
  };
  put(0, atimeNs);
  put(1, mtimeNs);
  check(lib().utimensat(dir, cstr(name), t, flags), 'utimensat', name);
}

// ---- extended attributes: f* on an open descriptor, l* on a (/proc/self/fd/N/name) path ----

function sized(call: (buf: Buffer | null, size: number) => number, syscall: string): Buffer {
  let size = 256;
  for (;;) {
    const buf = Buffer.allocUnsafe(size);
    const n = call(buf, size);
    if (n >= 0) return Buffer.from(buf.subarray(0, n));
    const errno = lastErrno();
    if (errno !== OSC.errno.ERANGE) throw sysError(syscall, errno);
    const need = call(null, 0);
    if (need < 0) throw sysError(syscall, lastErrno());
    size = Math.max(need, size * 2);
    if (size > 1 << 20) throw sysError(syscall, OSC.errno.E2BIG);
  }
}

function splitNames(b: Buffer): string[] {
  return b.toString('utf8').split('\0').filter((n) => n !== '');
}

export function fgetxattr(fd: number, name: string): Buffer {
  const n = cstr(name);
  return sized((b, s) => lib().fgetxattr(fd, n, b, s), 'fgetxattr');
}
export function fsetxattr(fd: number, name: string, value: Uint8Array, flags = 0): void {
  check(lib().fsetxattr(fd, cstr(name), value, value.length, flags), 'fsetxattr');
}
export function flistxattr(fd: number): string[] {
  return splitNames(sized((b, s) => lib().flistxattr(fd, b, s), 'flistxattr'));
}
export function fremovexattr(fd: number, name: string): void {
  check(lib().fremovexattr(fd, cstr(name)), 'fremovexattr');
}
export function lgetxattr(path: Name, name: string): Buffer {
  const p = cstr(path);
  const n = cstr(name, 1);
  return sized((b, s) => lib().lgetxattr(p, n, b, s), 'lgetxattr');
}
export function lsetxattr(path: Name, name: string, value: Uint8Array, flags = 0): void {
  check(lib().lsetxattr(cstr(path), cstr(name, 1), value, value.length, flags), 'lsetxattr');
}
export function llistxattr(path: Name): string[] {
  const p = cstr(path);
  return splitNames(sized((b, s) => lib().llistxattr(p, b, s), 'llistxattr'));
}
export function lremovexattr(path: Name, name: string): void {
  check(lib().lremovexattr(cstr(path), cstr(name, 1)), 'lremovexattr');
}

/** Path-based xattr calls that follow symlinks (for tools given a path by their user). */
export function getxattr(path: Name, name: string): Buffer {
  const p = cstr(path);
  const n = cstr(name, 1);
  return sized((b, s) => lib().getxattr(p, n, b, s), 'getxattr');
}
export function setxattr(path: Name, name: string, value: Uint8Array, flags = 0): void {
  check(lib().setxattr(cstr(path), cstr(name, 1), value, value.length, flags), 'setxattr');
}
export function listxattr(path: Name): string[] {
  const p = cstr(path);
  return splitNames(sized((b, s) => lib().listxattr(p, b, s), 'listxattr'));
}
export function removexattr(path: Name, name: string): void {
  check(lib().removexattr(cstr(path), cstr(name, 1)), 'removexattr');
}

/** listxattrat(2)'s number (Linux 6.13, the same on x86-64 and arm64); false once it answered ENOSYS. */
const NR_LISTXATTRAT = 465;
let haveListxattrat = process.arch === 'x64' || process.arch === 'arm64';

/**
 * The xattr names of `name` in directory `dir`, never following a symlink (listxattrat, Linux
 * 6.13+: one call, no /proc path walk), or the errno it failed with: ENOSYS on an older kernel
 * or under a seccomp filter (then remembered: no more tries).
 */
export function listxattratOrErrno(dir: number, name: Name): string[] | number {
  if (!haveListxattrat) return OSC.errno.ENOSYS;
  const n = cstr(name);
  let size = 256;
  for (;;) {
    const buf = Buffer.allocUnsafe(size);
    const r = lib().listxattrat(NR_LISTXATTRAT, dir, n, AT_SYMLINK_NOFOLLOW, buf, size);
    if (r >= 0) return splitNames(buf.subarray(0, r));
    const errno = lastErrno();
    // ENOSYS: a kernel before 6.13; EPERM: a seccomp filter that refuses syscalls it does not know
    // (listxattr itself never answers EPERM). Either way the callers' O_PATH way stays.
    if (errno === OSC.errno.ENOSYS || errno === OSC.errno.EPERM) haveListxattrat = false;
    if (errno !== OSC.errno.ERANGE) return errno;
    size *= 2;
    if (size > 1 << 20) return OSC.errno.E2BIG;
  }
}

/** cachestat(2)'s number (Linux 6.5, the same on x86-64 and arm64); false once it answered ENOSYS. */
const NR_CACHESTAT = 451;
let haveCachestat = process.arch === 'x64' || process.arch === 'arm64';
const cacheRange = new BigUint64Array(2);
const cacheStat = new BigUint64Array(5);

/**
 * How many pages of [off, off+len) of the file on `fd` are in the page cache (cachestat, Linux
 * 6.5+), or undefined where the kernel cannot tell (older kernels: ENOSYS, then remembered).
 */
export function cachedPages(fd: number, off: number, len: number): number | undefined {
  if (!haveCachestat) return undefined;
  cacheRange[0] = BigInt(off);
  cacheRange[1] = BigInt(len);
  if (lib().cachestat(NR_CACHESTAT, fd, cacheRange, cacheStat, 0) !== 0) {
    if (lastErrno() === OSC.errno.ENOSYS) haveCachestat = false;
    return undefined;
  }
  return Number(cacheStat[0]);
}

// ---- stat and directory streams ----

/** What lstat tells, as plain numbers (no Node types); times also in integer nanoseconds. */
export interface LowerStat {
  dev: number;
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  blksize: number;
  blocks: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  atimeNs: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

const statBuf = Buffer.alloc(256);

function parseStat(b: Buffer): LowerStat {
  const arm = process.arch === 'arm64';
  // 64-bit fields as two 32-bit halves: cheaper than BigInt reads, exact below 2^53.
  const n = (o: number) => b.readUInt32LE(o) + b.readUInt32LE(o + 4) * 4294967296;
  const sec = (o: number) => b.readUInt32LE(o) + b.readInt32LE(o + 4) * 4294967296;
  const ns = (o: number) => BigInt(sec(o)) * 1000000000n + BigInt(b.readUInt32LE(o + 8));
  return {
    dev: n(0),
    ino: n(8),
    mode: arm ? b.readUInt32LE(16) : b.readUInt32LE(24),
    nlink: arm ? b.readUInt32LE(20) : n(16),
    uid: arm ? b.readUInt32LE(24) : b.readUInt32LE(28),
    gid: arm ? b.readUInt32LE(28) : b.readUInt32LE(32),
    rdev: arm ? n(32) : n(40),
    size: n(48),
    blksize: arm ? b.readInt32LE(56) : n(56),
    blocks: n(64),
    atimeNs: ns(72),
    mtimeNs: ns(88),
    ctimeNs: ns(104),
    atimeMs: sec(72) * 1000 + b.readUInt32LE(80) / 1e6,
    mtimeMs: sec(88) * 1000 + b.readUInt32LE(96) / 1e6,
    ctimeMs: sec(104) * 1000 + b.readUInt32LE(112) / 1e6,
  };
}

/** fstatat, or the errno (positive) it failed with: a probe's ENOENT builds no Error. */
export function fstatatOrErrno(dir: number, name: Name, flags = AT_SYMLINK_NOFOLLOW): LowerStat | number {
  if (process.arch !== 'x64' && process.arch !== 'arm64') return OSC.errno.ENOSYS;
  if (lib().fstatat(dir, cstr(name), statBuf, flags | (name.length === 0 ? AT_EMPTY_PATH : 0)) < 0) return lastErrno();
  return parseStat(statBuf);
}
/** lstat of `name` in directory `dir` (never follows; AT_EMPTY_PATH with name '' stats `dir`). */
export function fstatat(dir: number, name: Name, flags = AT_SYMLINK_NOFOLLOW): LowerStat {
  const st = fstatatOrErrno(dir, name, flags);
  if (typeof st === 'number') throw sysError('fstatat', st, name);
  return st;
}
/**
 * fstatat, undefined when it fails (a missing name is the usual answer of a probe): no Error is
 * built for it (a captured stack costs more than the syscall).
 */
export function fstatatOrNull(dir: number, name: Name, flags = AT_SYMLINK_NOFOLLOW): LowerStat | undefined {
  const st = fstatatOrErrno(dir, name, flags);
  return typeof st === 'number' ? undefined : st;
}
export function fstat(fd: number): LowerStat {
  return fstatat(fd, '', AT_EMPTY_PATH);
}

export function lseek(fd: number, off: bigint, whence = 0): bigint {
  const r = lib().lseek(fd, off, whence);
  if (r < 0n) throw sysError('lseek', lastErrno());
  return r;
}

/** posix_fadvise(POSIX_FADV_WILLNEED): start reading the range into the page cache, without waiting. */
export function fadviseWillNeed(fd: number, off: number, len: number): void {
  const r = lib().posix_fadvise(fd, BigInt(off), BigInt(len), 3);
  if (r !== 0) throw sysError('posix_fadvise', r);
}

export interface RawDirent {
  ino: number;
  /** Cookie to resume after this entry (lseek), as the lower filesystem gives it. */
  off: bigint;
  /** DT_* type. */
  type: number;
  name: Buffer;
}

/** getdents64 into `buf`; returns the entries read ([] at the end). */
export function getdents(fd: number, buf: Buffer): RawDirent[] {
  const nrs: Record<string, number> = { x64: 217, arm64: 61 };
  const r = lib().syscall(nrs[process.arch] ?? -1, 'int', fd, 'uint8_t *', buf, 'size_t', buf.length);
  if (r < 0) throw sysError('getdents64', lastErrno());
  const out: RawDirent[] = [];
  for (let p = 0; p < r; ) {
    const reclen = buf.readUInt16LE(p + 16);
    const nameStart = p + 19;
    const nul = buf.indexOf(0, nameStart);
    out.push({ ino: Number(buf.readBigUInt64LE(p)), off: buf.readBigInt64LE(p + 8), type: buf[p + 18], name: Buffer.from(buf.subarray(nameStart, nul < 0 || nul > p + reclen ? p + reclen : nul)) });
    p += reclen;
  }
  return out;
}

// ---- per-thread filesystem credentials ----

const NR: Record<string, { setfsuid: number; setfsgid: number; setgroups: number }> = {
  x64: { setfsuid: 122, setfsgid: 123, setgroups: 116 },
  arm64: { setfsuid: 151, setfsgid: 152, setgroups: 159 },
};

function nr(): { setfsuid: number; setfsgid: number; setgroups: number } {
  const n = NR[process.arch];
  if (!n) throw sysError('setfsuid', OSC.errno.ENOSYS);
  return n;
}

/** setfsuid(2) for this thread only; returns the previous fsuid. */
export function setfsuid(uid: number): number {
  return lib().syscall(nr().setfsuid, 'uint32_t', uid >>> 0);
}
export function setfsgid(gid: number): number {
  return lib().syscall(nr().setfsgid, 'uint32_t', gid >>> 0);
}
/** setgroups(2) for this thread only (the raw syscall, not glibc's all-threads wrapper). */
export function setgroupsThread(groups: readonly number[]): void {
  const list = new Uint32Array(groups);
  const r = lib().syscall(nr().setgroups, 'long', groups.length, 'const uint32_t *', list);
  if (r < 0) throw sysError('setgroups', lastErrno());
}
