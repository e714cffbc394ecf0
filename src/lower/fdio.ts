/**
 * Positioned reads and writes on a lower descriptor, shared by both lower interfaces: transfers up
 * to `syncIoMax` bytes use synchronous syscalls (microseconds on a local disk, where a trip through
 * libuv's pool costs more), larger ones go to the pool so a server keeps serving meanwhile.
 */
import * as fs from 'node:fs';

function ioAsync(op: typeof fs.read | typeof fs.write, fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    (op as (fd: number, b: Uint8Array, o: number, l: number, p: number, cb: (e: NodeJS.ErrnoException | null, n: number) => void) => void)(fd, buf, offset, length, position, (e, n) => (e ? reject(e) : resolve(n)));
  });
}

/** `fn()` as a settled promise (its throw a rejection). */
export function attempt<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Read `length` bytes at `position` (fewer only at end of file). `live` runs before every call:
 * a descriptor closed meanwhile must not be used (its number may be another file's by then).
 */
export async function readAt(fd: number, buf: Uint8Array, offset: number, length: number, position: number, syncIoMax: number, live?: () => void): Promise<number> {
  live?.();
  if (length <= syncIoMax) return fs.readSync(fd, buf, offset, length, position);
  let done = 0;
  while (done < length) {
    live?.();
    const n = await ioAsync(fs.read, fd, buf, offset + done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

/** Write all `length` bytes at `position`; `live` as for readAt. */
export async function writeAt(fd: number, buf: Uint8Array, offset: number, length: number, position: number, syncIoMax: number, live?: () => void): Promise<number> {
  let done = 0;
  while (done < length) {
    live?.();
    const n = length - done <= syncIoMax
      ? fs.writeSync(fd, buf, offset + done, length - done, position + done)
      : await ioAsync(fs.write, fd, buf, offset + done, length - done, position + done);
    done += n;
  }
  return done;
}
