/**
 * Worker side of the header prefetch (prefetch.ts): for each name in a listed directory, asks the
 * kernel to start reading the file's first page (the header with the clear size a lookup reads),
 * without waiting for it. Each name is opened O_PATH and no-follow, checked with fstat to be a
 * regular file, and only then reopened for reading through its /proc/self/fd link (exactly that
 * inode): a name swapped for a symlink, FIFO or device is never followed nor opened. Nothing is
 * read into this process and nothing is answered from here: it only warms the page cache.
 */
import { closeSync } from 'node:fs';
import { constants as C } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { isReg } from '../../lower/at.js';
import { AT_FDCWD, O_CLOEXEC, O_PATH, fadviseWillNeed, fdPath, fstat, openat } from '../../lower/sys.js';

const done = new Int32Array(workerData as SharedArrayBuffer);

function close(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already gone
  }
}

function warm(dir: number, name: Uint8Array): void {
  let p: number;
  try {
    p = openat(dir, name, O_PATH | C.O_NOFOLLOW | O_CLOEXEC);
  } catch {
    return;
  }
  try {
    const st = fstat(p);
    if (!isReg(st.mode) || st.size === 0) return;
    const fd = openat(AT_FDCWD, fdPath(p), C.O_RDONLY | C.O_NONBLOCK | C.O_NOCTTY | O_CLOEXEC);
    try {
      fadviseWillNeed(fd, 0, 4096);
    } finally {
      close(fd);
    }
  } catch {
    // vanished or not readable: the lookup reads it itself
  } finally {
    close(p);
  }
}

parentPort!.on('message', ({ dir, names }: { dir: number; names: Uint8Array[] }) => {
  try {
    for (const name of names) warm(dir, name);
  } finally {
    close(dir);
    Atomics.add(done, 0, names.length);
    Atomics.add(done, 1, 1);
  }
});
