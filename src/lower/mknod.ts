/**
 * mknod(2) for FIFOs, sockets and device nodes. Node has no mknod: FIFOs and devices come from
 * the `mknod` command (coreutils), sockets from binding a Unix socket. Names may be any bytes and
 * argv cannot carry them, so the node is made under a temporary ASCII name in the target's
 * directory, reached through a descriptor (/proc/self/fd/N, so no path is resolved twice), and
 * then hard-linked to its name (which fails with EEXIST like mknod) and the temporary unlinked.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { constants as fsc } from 'node:fs';
import { createServer } from 'node:net';

export const S_IFMT = 0o170000;
export const S_IFSOCK = 0o140000;
export const S_IFBLK = 0o060000;
export const S_IFCHR = 0o020000;
export const S_IFIFO = 0o010000;
/** Linux O_PATH (x86_64 and arm64): a descriptor that names an inode without opening it. */
export const O_PATH = 0o10000000;

/** Major and minor numbers of a dev_t (glibc's gnu_dev_major/minor). */
export function devMajorMinor(rdev: number): [number, number] {
  const d = BigInt(rdev);
  const major = Number(((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn));
  const minor = Number((d & 0xffn) | ((d >> 12n) & ~0xffn));
  return [major, minor];
}

function splitDir(path: string | Buffer): [Buffer, Buffer] {
  const b = Buffer.from(path);
  const i = b.lastIndexOf(0x2f);
  return i < 0 ? [Buffer.from('.'), b] : [i === 0 ? Buffer.from('/') : b.subarray(0, i), b.subarray(i + 1)];
}

function errnoError(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${syscall} '${path}'`), { code, syscall, path });
}

function run(args: string[], dirFd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('mknod', args, { stdio: ['ignore', 'ignore', 'pipe', dirFd] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (rc) => {
      if (rc === 0) return resolve();
      const msg = stderr.trim();
      const code = /Operation not permitted/.test(msg) ? 'EPERM' : /File exists/.test(msg) ? 'EEXIST' : /No space/.test(msg) ? 'ENOSPC' : 'EIO';
      reject(Object.assign(errnoError(code, 'mknod', args[2]), { message: `${code}: mknod: ${msg || `exit ${rc}`}` }));
    });
  });
}

async function bindSocket(path: string): Promise<void> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  // libuv unlinks the socket's path on close: move it away first (the caller links it anyway).
  const keep = `${path}.k`;
  fs.linkSync(path, keep);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  fs.rmSync(path, { force: true });
  fs.renameSync(keep, path);
}

/** Create a FIFO, socket or device node at an absolute (or cwd-relative) path. */
export async function mknodAt(path: string | Buffer, mode: number, rdev: number): Promise<void> {
  const [dir, name] = splitDir(path);
  const type = mode & S_IFMT;
  if (type !== S_IFIFO && type !== S_IFSOCK && type !== S_IFCHR && type !== S_IFBLK) {
    throw errnoError('EINVAL', 'mknod', Buffer.from(path).toString());
  }
  const dirFd = fs.openSync(dir, O_PATH | fsc.O_DIRECTORY);
  const tmp = `.ecryptfs-mknod-${randomBytes(6).toString('hex')}`;
  const inDir = (n: string | Buffer) => Buffer.concat([Buffer.from(`/proc/self/fd/${dirFd}/`), Buffer.from(n)]);
  try {
    const perm = (mode & 0o7777).toString(8);
    if (type === S_IFSOCK) {
      await bindSocket(`/proc/self/fd/${dirFd}/${tmp}`);
      fs.chmodSync(inDir(tmp), mode & 0o7777);
    }
    else if (type === S_IFIFO) await run(['-m', perm, `/proc/self/fd/3/${tmp}`, 'p'], dirFd);
    else {
      const [major, minor] = devMajorMinor(rdev);
      await run(['-m', perm, `/proc/self/fd/3/${tmp}`, type === S_IFCHR ? 'c' : 'b', String(major), String(minor)], dirFd);
    }
    try {
      fs.linkSync(inDir(tmp), inDir(name));
    } finally {
      fs.rmSync(inDir(tmp), { force: true });
    }
  } finally {
    fs.closeSync(dirFd);
  }
}
