/** Errors that FUSE operations throw, and their mapping to the errno the kernel is replied. */
import { constants } from 'node:os';

const ERRNO = constants.errno as Record<string, number>;

/** The positive errno for a name like 'ENOENT' (Linux values, from node:os). */
export function errnoOf(code: string): number | undefined {
  return ERRNO[code];
}

/** Thrown by an operation to reply a specific errno (e.g. `throw new FuseErrno('ENOENT')`). */
export class FuseErrno extends Error {
  readonly errno: number;
  readonly code: string;
  constructor(code: string | number, message?: string) {
    const errno = typeof code === 'number' ? code : (errnoOf(code) ?? ERRNO.EIO);
    const name = typeof code === 'string' ? code : (Object.keys(ERRNO).find((k) => ERRNO[k] === code) ?? `errno ${code}`);
    super(message ?? name);
    this.name = 'FuseErrno';
    this.errno = errno;
    this.code = name;
  }
}

/**
 * The positive errno for anything an operation threw: FuseErrno, a Node system error (its
 * `code` string, e.g. from fs.promises), or an `errno` property. Anything else is EIO, and the
 * caller is told it was unexpected so it can log it.
 */
export function toErrno(err: unknown): { errno: number; expected: boolean } {
  if (err instanceof FuseErrno) return { errno: err.errno, expected: true };
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; errno?: unknown };
    if (typeof e.code === 'string') {
      const n = errnoOf(e.code);
      if (n !== undefined) return { errno: n, expected: true };
    }
    // Node system errors carry a negative errno; some libraries use positive ones.
    if (typeof e.errno === 'number' && Number.isInteger(e.errno) && e.errno !== 0) {
      return { errno: Math.abs(e.errno), expected: true };
    }
  }
  return { errno: ERRNO.EIO, expected: false };
}
