/**
 * Extended attributes on the lower filesystem by path, for tools given a path by their user
 * (ecryptfs-stat, test fixtures). In-process system calls through koffi (src/lower/sys.ts); the
 * mount uses the descriptor-based calls in sys.ts directly.
 */
import * as sys from './sys.js';

export class XattrError extends Error {
  constructor(readonly errno: number, readonly code: string, message: string) {
    super(message);
  }
}

function run<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    const err = e as sys.SysError;
    return Promise.reject(err.code ? new XattrError(-err.errno, err.code, err.message) : e);
  }
}

export function getXattr(path: string | Buffer, name: string, follow = true): Promise<Buffer> {
  return run(() => (follow ? sys.getxattr(path, name) : sys.lgetxattr(path, name)));
}

/** The attribute, or undefined when it does not exist (ENODATA). */
export async function getXattrIfAny(path: string | Buffer, name: string, follow = true): Promise<Buffer | undefined> {
  try {
    return await getXattr(path, name, follow);
  } catch (e) {
    if (e instanceof XattrError && (e.code === 'ENODATA' || e.code === 'EOPNOTSUPP')) return undefined;
    throw e;
  }
}

export function setXattr(path: string | Buffer, name: string, value: Uint8Array, flags = 0, follow = true): Promise<void> {
  return run(() => (follow ? sys.setxattr(path, name, value, flags) : sys.lsetxattr(path, name, value, flags)));
}

export function listXattr(path: string | Buffer, follow = true): Promise<string[]> {
  return run(() => (follow ? sys.listxattr(path) : sys.llistxattr(path)));
}

export function removeXattr(path: string | Buffer, name: string, follow = true): Promise<void> {
  return run(() => (follow ? sys.removexattr(path, name) : sys.lremovexattr(path, name)));
}
