/**
 * mknod(2) for FIFOs, sockets and device nodes (Node has none): the mknodat system call through
 * koffi (src/lower/sys.ts), so a name is any bytes and nothing is spawned.
 */
import { AT_FDCWD, mknodat, O_PATH } from './sys.js';

export { O_PATH };
import { S_IFBLK, S_IFCHR, S_IFIFO, S_IFMT, S_IFSOCK } from './mode.js';
export { S_IFBLK, S_IFCHR, S_IFIFO, S_IFMT, S_IFSOCK };

/** Major and minor numbers of a dev_t (glibc's gnu_dev_major/minor). */
export function devMajorMinor(rdev: number): [number, number] {
  const d = BigInt(rdev);
  const major = Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
  const minor = Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
  return [major, minor];
}

/**
 * Create a FIFO, socket or device node (`mode` holds the type bits and the permissions; the
 * process umask applies, so callers that keep a mode chmod afterwards). Fails with EEXIST.
 */
export function mknodAt(path: string | Buffer, mode: number, rdev: number): Promise<void> {
  const type = mode & S_IFMT;
  if (type !== S_IFIFO && type !== S_IFSOCK && type !== S_IFCHR && type !== S_IFBLK) {
    return Promise.reject(Object.assign(new Error('EINVAL: mknod of a type that is not a FIFO, socket or device'), { code: 'EINVAL' }));
  }
  try {
    mknodat(AT_FDCWD, path, mode, type === S_IFCHR || type === S_IFBLK ? rdev : 0);
    return Promise.resolve();
  } catch (e) {
    return Promise.reject(e);
  }
}
