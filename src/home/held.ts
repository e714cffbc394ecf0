/**
 * Descriptor-relative, no-follow file work for the tools that run as root in a user's tree
 * (setup-private -b, migrate-home). A directory is opened once, without following a link, and
 * checked; its entries are then reached as /proc/self/fd/N/NAME, which the kernel resolves from
 * that open directory whatever its path has become since, and every final component is opened
 * with O_NOFOLLOW (or is an operation that never follows: lstat, lchown, unlink, rename, mkdir,
 * symlink). Names may be Buffers: Linux names are bytes.
 */
import { closeSync, promises as fsp, constants as fsc, type BigIntStats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { EcryptfsError } from '../errors.js';

import { isLnk } from '../lower/mode.js';
import { AT_EMPTY_PATH, AT_SYMLINK_NOFOLLOW, fchownat, fstat, O_CLOEXEC, O_PATH, openat, symlinkat, unlinkat } from '../lower/sys.js';

export { O_PATH };
export const O_DIR_NOFOLLOW = fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW;

export type Name = string | Buffer;

/** The path of `name` inside the directory open as `fd`. */
export function at(fd: number, name: Name): Name {
  return typeof name === 'string' ? `/proc/self/fd/${fd}/${name}` : Buffer.concat([Buffer.from(`/proc/self/fd/${fd}/`), name]);
}

const strict = new TextDecoder('utf-8', { fatal: true });

/**
 * A name for messages: UTF-8 as it is, any byte that is not part of valid UTF-8 as \xNN (byte by
 * byte, so a path shows as its components do).
 */
export function shown(name: Name): string {
  if (typeof name === 'string') return name;
  let out = '';
  for (let i = 0; i < name.length; ) {
    const b = name[i];
    const len = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    let piece: string | undefined;
    if (len && i + len <= name.length) {
      try {
        piece = strict.decode(name.subarray(i, i + len));
      } catch {
        piece = undefined;
      }
    }
    if (piece === undefined) {
      out += `\\x${b.toString(16).padStart(2, '0')}`;
      i++;
    } else {
      out += piece;
      i += len;
    }
  }
  return out;
}

/**
 * Root's chown of the link just made as `name` in the directory open as `dir`, on the link's own
 * descriptor: by name, the user owning `dir` could have swapped it meanwhile for a hard link to a
 * file of someone else's that the user may read and write, and root would give that file away.
 */
export function chownNewLink(dir: number, name: Name, uid: number, gid: number): void {
  const fd = openat(dir, name, O_PATH | fsc.O_NOFOLLOW | O_CLOEXEC);
  try {
    if (!isLnk(fstat(fd).mode)) throw new EcryptfsError('EINVAL', `${shown(name)} changed while it was being made; run again`);
    fchownat(fd, '', uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
  } finally {
    closeSync(fd);
  }
}

/**
 * `name` in the directory open as `dir` made (or made again) a symbolic link to `target` owned by
 * uid:gid, without a path: an existing non-directory of that name goes first.
 */
export function replaceLinkAt(dir: number, name: Name, target: Name, owner?: { uid: number; gid: number }): void {
  try {
    unlinkat(dir, name);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  symlinkat(target, dir, name);
  if (owner) chownNewLink(dir, name, owner.uid, owner.gid);
}

/** The entries of an open directory, as bytes. */
export async function entries(dir: FileHandle): Promise<Buffer[]> {
  return fsp.readdir(`/proc/self/fd/${dir.fd}`, { encoding: 'buffer' });
}

/** Open directory `name` in `parent` (or an absolute path) without following a link there. */
export async function openDir(parent: FileHandle | undefined, name: Name): Promise<FileHandle> {
  return fsp.open(parent ? at(parent.fd, name) : name, O_DIR_NOFOLLOW);
}

/**
 * A directory of `owner`'s (or root's), made 0700 if missing, opened without following a link
 * and checked; what is wrong is said with `what` (the path as the user knows it) and a fix.
 */
export async function holdUserDir(parent: FileHandle | undefined, name: Name, what: string, owner: { uid: number; name: string }): Promise<FileHandle> {
  await fsp.mkdir(parent ? at(parent.fd, name) : name, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  let fh: FileHandle;
  try {
    fh = await openDir(parent, name);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR') {
      const st = await fsp.lstat(parent ? at(parent.fd, name) : name).catch(() => undefined);
      const kind = st?.isSymbolicLink() ? 'a symbolic link' : 'not a directory';
      throw new EcryptfsError('EINVAL', `${what} is ${kind}. Run as root, this tool does not follow links or use files in ${owner.name}'s home that ${owner.name} could point elsewhere; move it away (mv ${what} ${what}.old) and run again.`);
    }
    throw e;
  }
  const st = await fh.stat();
  if (st.uid !== owner.uid && st.uid !== 0) {
    await fh.close();
    throw new EcryptfsError('EINVAL', `${what} is owned by uid ${st.uid}, neither ${owner.name} nor root; move it away and run again.`);
  }
  return fh;
}

/** Open `name` in `dir` as O_PATH|O_NOFOLLOW (no side effect, whatever it is) with its stat. */
export async function pin(dir: FileHandle, name: Name): Promise<{ fh: FileHandle; st: BigIntStats }> {
  const fh = await fsp.open(at(dir.fd, name), O_PATH | fsc.O_NOFOLLOW);
  try {
    return { fh, st: await fh.stat({ bigint: true }) };
  } catch (e) {
    await fh.close();
    throw e;
  }
}

/**
 * Open for reading the very inode a pin holds (through its /proc magic link, which reopens that
 * inode and never resolves a name again), and check it is still the same one.
 */
export async function reopen(pinned: FileHandle, st: BigIntStats, flags = fsc.O_RDONLY): Promise<FileHandle> {
  const fh = await fsp.open(`/proc/self/fd/${pinned.fd}`, flags | fsc.O_NONBLOCK);
  const now = await fh.stat({ bigint: true });
  if (now.ino !== st.ino || now.dev !== st.dev) {
    await fh.close();
    throw new EcryptfsError('EIO', 'an entry changed while it was being opened');
  }
  return fh;
}

/** Remove `name` from `dir` and, if it is a directory, everything under it, never following a link. */
export async function removeAt(dir: FileHandle, name: Name): Promise<void> {
  const path = at(dir.fd, name);
  const st = await fsp.lstat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isDirectory()) {
    await fsp.unlink(path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw e;
    });
    return;
  }
  const sub = await openDir(dir, name).catch(() => undefined);
  if (sub) {
    try {
      for (const n of await entries(sub)) await removeAt(sub, n);
    } finally {
      await sub.close();
    }
  }
  await fsp.rmdir(path).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'ENOENT') throw e;
  });
}

/** Remove `rel` (components from `root`, an absolute directory path), walking without following links. */
export async function removeUnder(root: string, rel: Name[]): Promise<void> {
  if (!rel.length) return;
  let dir = await openDir(undefined, root);
  try {
    for (const c of rel.slice(0, -1)) {
      const next = await openDir(dir, c).catch(() => undefined);
      await dir.close();
      if (!next) return;
      dir = next;
    }
    await removeAt(dir, rel[rel.length - 1]);
  } finally {
    await dir.close().catch(() => undefined);
  }
}

/**
 * A regular file `name` in `dir`, owned by one of `owners` (by anyone when not given), read
 * without following a link or blocking on a FIFO; undefined when there is none. Anything else
 * there is refused, named as `what`.
 */
export async function readHeldFile(dir: FileHandle, name: Name, owners: number[] | undefined, what: string): Promise<Buffer | undefined> {
  let fh: FileHandle;
  try {
    fh = await fsp.open(at(dir.fd, name), fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw new EcryptfsError('EINVAL', `${what} is a symbolic link; run as root, this tool does not follow it. Put the file itself there.`);
    throw e;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new EcryptfsError('EINVAL', `${what} is not a regular file; put the file itself there.`);
    if (owners && !owners.includes(st.uid)) throw new EcryptfsError('EINVAL', `${what} is owned by uid ${st.uid}, not by ${owners.join(' or ')}; it was not made by the setup, remove it.`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}
