/**
 * System calls of the system underneath that Node lacks (mount(2), the keyring's add_key and
 * keyctl), through koffi as src/lower/sys.ts does for the lower directory; loaded on first use.
 * Replacing a spawned mount(8) or keyctl by the call itself saves a process start each (measured
 * on a mount: README Performance). Failures throw Node-style errors (code, errno, syscall).
 */
import { createRequire } from 'node:module';
import { constants as OSC } from 'node:os';

interface Koffi {
  load(lib: string): { func(sig: string): (...a: unknown[]) => number };
  errno(): number;
  view(ptr: unknown, len: number): ArrayBuffer;
}

interface Calls {
  mount(source: string, target: string, fstype: string, flags: number, data: string): number;
  syscall(nr: number, ...a: unknown[]): number;
  strerror(errno: number): string;
  poll(fds: Buffer, n: number, timeoutMs: number): number;
  mmap(addr: null, len: number, prot: number, flags: number, fd: number, off: number): unknown;
}

type Libc = ReturnType<Koffi['load']>;

let koffi: Koffi | undefined;
let libc: Libc | undefined;
let calls: Calls | undefined;

/** The C library through koffi, loaded once per thread for every module that binds calls from it. */
export function libcLibrary(): Libc {
  if (libc) return libc;
  koffi = createRequire(import.meta.url)('koffi') as Koffi;
  libc = koffi.load('libc.so.6');
  return libc;
}

function lib(): Calls {
  if (calls) return calls;
  const c = libcLibrary();
  calls = {
    mount: c.func('int mount(const char *, const char *, const char *, unsigned long, const char *)'),
    syscall: c.func('long syscall(long, ...)'),
    strerror: c.func('const char *strerror(int)'),
    poll: c.func('int poll(_Inout_ uint8_t *, unsigned long, int)'),
    mmap: c.func('void *mmap(void *, size_t, int, int, int, int64_t)'),
  } as unknown as Calls;
  return calls;
}

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_PRIVATE = 2;
const MAP_ANONYMOUS = 0x20;

/**
 * `bytes` of page-aligned memory of the process's own (an anonymous mapping), as a Buffer: what a
 * read with O_DIRECT needs. Never unmapped: for buffers kept as long as the process (a Buffer over
 * external memory does not own it).
 */
const pageAligned = new WeakSet<ArrayBufferLike>();

/** Whether `buf` from byte `offset` starts on a page of memory pageAlignedBuffer made (what O_DIRECT needs). */
export function isPageAligned(buf: Uint8Array, offset: number): boolean {
  return pageAligned.has(buf.buffer) && (buf.byteOffset + offset) % 4096 === 0;
}

export function pageAlignedBuffer(bytes: number): Buffer {
  const p = lib().mmap(null, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  // MAP_FAILED is (void *) -1.
  const addr = p === null ? 0n : BigInt.asIntN(64, (koffi as unknown as { address(x: unknown): bigint }).address(p));
  if (addr === -1n || addr === 0n) throw callError('mmap', lastErrno(), '');
  const ab = koffi!.view(p, bytes);
  pageAligned.add(ab);
  return Buffer.from(ab);
}

/** Load koffi and libc now (a process that waits for work can take this cost before it comes). */
export function preloadLibc(): void {
  lib();
}

const CODES: Record<number, string> = Object.fromEntries(Object.entries(OSC.errno).map(([k, v]) => [v, k]));

export interface SysCallError extends Error {
  code: string;
  errno: number;
  syscall: string;
}

/** A Node-style error for a failed call (errno negative, as node:fs has it); `detail` ends the message. */
export function callError(syscall: string, errno: number, detail = ''): SysCallError {
  const code = CODES[errno] ?? `E${errno}`;
  const e = new Error(`${code}: ${syscall} failed${detail}`) as SysCallError;
  e.code = code;
  e.errno = -errno;
  e.syscall = syscall;
  return e;
}

/** errno of the last failed call on this thread. */
export const lastErrno = (): number => koffi!.errno();

/** The C library's text for an errno ("Operation not permitted"), as the C tools print it. */
export const strerror = (errno: number): string => lib().strerror(errno);

// mount(2) flags for the generic options mount(8) turns into flags (libmount's table); the rest
// of the options go to the filesystem as its data string.
const MS_FLAGS: Record<string, [set: number, clear: number]> = {
  ro: [1, 0], rw: [0, 1],
  nosuid: [2, 0], suid: [0, 2],
  nodev: [4, 0], dev: [0, 4],
  noexec: [8, 0], exec: [0, 8],
  sync: [16, 0], async: [0, 16],
  dirsync: [128, 0],
  nosymfollow: [256, 0],
  noatime: [1024, 0], atime: [0, 1024],
  nodiratime: [2048, 0], diratime: [0, 2048],
  relatime: [1 << 21, 0], norelatime: [0, 1 << 21],
  strictatime: [1 << 24, 0], nostrictatime: [0, 1 << 24],
  lazytime: [1 << 25, 0], nolazytime: [0, 1 << 25],
};

/** Split mount options as mount(8) does: flags for mount(2), the rest as the data string (in order). */
export function mountFlags(options: readonly string[]): { flags: number; data: string } {
  let flags = 0;
  const data: string[] = [];
  for (const o of options) {
    const f = MS_FLAGS[o];
    if (f) flags = (flags | f[0]) & ~f[1];
    else data.push(o);
  }
  return { flags, data: data.join(',') };
}

/** mount(2) of `source` on `target` with mount(8)-style `options`; throws a Node-style error. */
export function mountSyscall(source: string, target: string, fstype: string, options: readonly string[]): void {
  const { flags, data } = mountFlags(options);
  if (lib().mount(source, target, fstype, flags, data) !== 0) throw callError('mount', lastErrno(), ` on '${target}'`);
}

const KEY_NR: Record<string, { addKey: number; keyctl: number }> = {
  x64: { addKey: 248, keyctl: 250 },
  arm64: { addKey: 217, keyctl: 219 },
};

function keyNr(): { addKey: number; keyctl: number } {
  const n = KEY_NR[process.arch];
  if (!n) throw callError('keyctl', OSC.errno.ENOSYS);
  return n;
}

/** add_key(2): returns the key's serial number, or -1 with lastErrno() set. */
export function addKeyCall(type: string, description: string, payload: Uint8Array, keyring: number): number {
  return lib().syscall(keyNr().addKey, 'const char *', type, 'const char *', description, 'const uint8_t *', payload, 'size_t', payload.length, 'int32_t', keyring);
}

/** keyctl(2) with integer arguments (LINK, UNLINK, GET_KEYRING_ID, ...): the result, or -1 with lastErrno() set. */
export function keyctlCall(op: number, ...args: number[]): number {
  return lib().syscall(keyNr().keyctl, 'int', op, ...args.flatMap((a) => ['long', a]));
}

/** keyctl(KEYCTL_SEARCH, keyring, type, description, 0): the key's serial, or -1 with lastErrno() set. */
export function keyctlSearch(keyring: number, type: string, description: string): number {
  return lib().syscall(keyNr().keyctl, 'int', 10, 'int32_t', keyring, 'const char *', type, 'const char *', description, 'int32_t', 0);
}

/** keyctl(KEYCTL_READ or KEYCTL_DESCRIBE, id, buf, len): the full length (may exceed len), or -1. */
export function keyctlRead(op: number, id: number, buf: Buffer | null, len: number): number {
  return lib().syscall(keyNr().keyctl, 'int', op, 'int32_t', id, 'uint8_t *', buf, 'size_t', len);
}

const pollFd = Buffer.alloc(8);

/** Whether `fd` is readable now (poll(2) with a zero timeout; errors count as readable, so the read reports them). */
export function readableNow(fd: number): boolean {
  pollFd.writeInt32LE(fd, 0);
  pollFd.writeInt16LE(1 /* POLLIN */, 4);
  pollFd.writeInt16LE(0, 6);
  return lib().poll(pollFd, 1, 0) !== 0;
}
