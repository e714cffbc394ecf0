/** Errors the filesystem layer answers with, and the errno the kernel gets for any error. */
import { constants as OSC } from 'node:os';
import { isEcryptfsError } from '../../errors.js';

/**
 * An errno answer (ENODATA for an absent xattr, ENOENT, EPERM...): an expected reply, not a fault,
 * so it is built without a stack trace (capturing one cost ~2.5 us of the ~3 us an ENODATA took;
 * `ls -l` asks three absent xattrs per entry).
 */
export class ErrnoError extends Error {
  constructor(readonly errno: number, message?: string) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(message ?? `errno ${errno}`);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}

const E = OSC.errno;

/** Map any error to an errno for the kernel. */
export function toErrno(e: unknown): number {
  if (e instanceof ErrnoError) return e.errno;
  if (isEcryptfsError(e)) {
    switch (e.code) {
      case 'ENAMETOOLONG': return E.ENAMETOOLONG;
      case 'EINVAL': return E.EINVAL;
      default: return E.EIO;
    }
  }
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code && code in E) return (E as Record<string, number>)[code];
  return E.EIO;
}
