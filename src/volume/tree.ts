/**
 * Whole-tree conversion without a mount: decrypt a lower tree into clear files, or encrypt clear
 * files into a lower directory. Names are bytes end to end (Buffer paths), every file type is
 * kept (FIFOs, sockets and device nodes are stored with no header, as the kernel stores them),
 * and so are user.* xattrs and POSIX ACLs.
 *
 * Decrypt writes DEST through directory descriptors: every entry is made at
 * /proc/PID/fd/DIRFD/NAME with O_EXCL / O_NOFOLLOW, subdirectories are opened with O_NOFOLLOW
 * (a DEST entry that is a symlink is refused, never followed), and a name that decrypts to
 * something that is not one path component ('..', 'a/b', empty, NUL) is reported and skipped.
 * Outputs are written under a temporary name and renamed when whole, so an interrupted or failed
 * file never leaves a half-written output. As root, owners are kept only on what decrypt created,
 * set on its descriptor.
 */
import * as fs from 'node:fs';
import { constants as fsc, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { EcryptfsError, isEcryptfsError } from '../errors.js';
import { NodeLowerFs, resolveBytes, type LowerFs, type LowerPath } from '../lower/lowerfs.js';
import { mknodAt, O_PATH } from '../lower/mknod.js';
import { CHUNK, EcryptfsFile, XATTR_NAME } from './file.js';
import { escapeName } from './names.js';
import { checkClearName, type Volume } from './volume.js';

export interface TreeProblem {
  /** The source path (lower path for decrypt, clear path for encrypt), escaped as names are. */
  path: string;
  error: Error;
}

export interface TreeProgress {
  /** Called once with the totals, then after every file with bytes done so far. */
  onTotal?(files: number, bytes: number): void;
  onFile?(path: string, bytesDone: number): void;
}

export interface TreeResult {
  files: number;
  dirs: number;
  symlinks: number;
  /** FIFOs, sockets and device nodes. */
  specials: number;
  bytes: number;
  /** Entries not converted (bad names, unreadable files...): the run failed for them. */
  problems: TreeProblem[];
  /** What the destination would not keep (extended attributes, ACLs): the data is converted. */
  notes: string[];
}

const SLASH = Buffer.from('/');
const joinB = (dir: Buffer, name: Buffer): Buffer => (dir.length === 0 ? Buffer.from(name) : Buffer.concat([dir, SLASH, name]));
const tmpName = (): Buffer => Buffer.from(`.ecryptfs-tmp-${randomBytes(6).toString('hex')}`);
const isRoot = (): boolean => process.getuid?.() === 0;

/** The extended attributes a copy keeps: user.* (not the eCryptfs metadata) and POSIX ACLs. */
export function keptXattr(name: string): boolean {
  return (name.startsWith('user.') && name !== XATTR_NAME) || name === 'system.posix_acl_access' || name === 'system.posix_acl_default';
}

/** Xattrs the destination refused, counted per reason so a run prints one note per reason. */
export class XattrNotes {
  private readonly seen = new Map<string, { count: number; first: string }>();
  constructor(private readonly where: string) {}
  add(code: string, attr: string, path: string): void {
    const k = `${code}`;
    const s = this.seen.get(k);
    if (s) s.count++;
    else this.seen.set(k, { count: 1, first: `${attr} of ${path}` });
  }
  notes(): string[] {
    return [...this.seen].map(([code, s]) =>
      `${this.where} refused ${s.count} extended attribute${s.count === 1 ? '' : 's'} (${code}; first: ${s.first}); the data is copied without them (mount the destination with user_xattr/acl support to keep them)`,
    );
  }
}

/** Copy the kept xattrs (keptXattr) of one entry; what the destination refuses goes to `notes`. */
export async function copyXattrs(from: LowerFs, fromPath: LowerPath, to: LowerFs, toPath: LowerPath, notes: XattrNotes, display: string, special: boolean): Promise<void> {
  const names = await from.listxattr(fromPath).catch(() => [] as string[]);
  for (const n of names) {
    if (!keptXattr(n) || (special && n.startsWith('user.'))) continue;
    const v = await from.getxattr(fromPath, n);
    if (v === undefined) continue;
    try {
      await to.setxattr(toPath, n, v);
    } catch (e) {
      notes.add((e as NodeJS.ErrnoException).code ?? 'error', n, display);
    }
  }
}

function countTree(lower: LowerFs): (p: Buffer) => Promise<[number, number]> {
  const count = async (p: Buffer): Promise<[number, number]> => {
    const st = await lower.lstat(p).catch(() => undefined);
    if (!st) return [0, 0];
    if (st.isFile()) return [1, st.size];
    let files = 0;
    let bytes = 0;
    if (st.isDirectory()) {
      for (const n of await lower.readdirBytes(p).catch(() => [] as Buffer[])) {
        const [f, b] = await count(joinB(p, n));
        files += f;
        bytes += b;
      }
    }
    return [files, bytes];
  };
  return count;
}

/**
 * A directory of DEST held by a descriptor. `at(name)` is a path that the kernel resolves
 * through the descriptor (/proc/PID/fd/N is a link to exactly the directory opened), so a
 * renamed or swapped parent is never followed; `fs` reaches the same names for xattrs.
 */
class DestDir {
  readonly base: string;
  readonly fs: NodeLowerFs;
  constructor(readonly fd: number, readonly display: string) {
    this.base = `/proc/${process.pid}/fd/${fd}`;
    this.fs = new NodeLowerFs(this.base);
  }
  at(name: Buffer): Buffer {
    return Buffer.concat([Buffer.from(`${this.base}/`), name]);
  }
  close(): void {
    fs.closeSync(this.fd);
  }
}

function openDestRoot(dest: string | Buffer): DestDir {
  fs.mkdirSync(dest, { recursive: true });
  const fd = fs.openSync(dest, fsc.O_RDONLY | fsc.O_DIRECTORY);
  if (!fs.existsSync(`/proc/${process.pid}/fd/${fd}`)) {
    fs.closeSync(fd);
    throw new EcryptfsError('EUNSUPPORTED', 'decrypt needs /proc (it writes DEST through directory descriptors): mount proc', escapeName(Buffer.from(dest)));
  }
  return new DestDir(fd, escapeName(Buffer.from(dest)));
}

const refuseLink = (display: string) =>
  new EcryptfsError('EINVAL', 'this DEST entry is a symlink or not a directory; decrypt does not follow it: remove it or decrypt into an empty DEST', display);

/** Make (or reuse) a subdirectory of `parent` and open it without following a symlink. */
function openSubdir(parent: DestDir, name: Buffer, display: string, owner: Stats): { dir: DestDir; created: boolean } {
  let created = false;
  try {
    fs.mkdirSync(parent.at(name), { mode: 0o700 });
    created = true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  let fd: number;
  try {
    fd = fs.openSync(parent.at(name), fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR') throw refuseLink(display);
    throw e;
  }
  const dir = new DestDir(fd, display);
  if (created && isRoot()) {
    // What we made is ours (uid 0) unless someone swapped in their own directory: then refuse it.
    if (fs.fstatSync(fd).uid !== 0) {
      dir.close();
      throw refuseLink(display);
    }
    fs.fchownSync(fd, owner.uid, owner.gid);
  }
  return { dir, created };
}

/** Mode, times (and owner, as root) of a node that has no open descriptor of its own (symlink, FIFO...). */
function metaByPathFd(parent: DestDir, tmp: Buffer, st: Stats, chmod: boolean): void {
  const fd = fs.openSync(parent.at(tmp), O_PATH | fsc.O_NOFOLLOW);
  try {
    const self = `/proc/${process.pid}/fd/${fd}`;
    if (isRoot()) fs.chownSync(self, st.uid, st.gid);
    if (chmod) fs.chmodSync(self, st.mode & 0o7777);
    fs.utimesSync(self, st.atime, st.mtime);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Decrypt lower entries (`lowerPaths`, relative to the volume's lower root; '' = the whole
 * volume, whose contents then fill `dest` like `cp -a SRC/. DEST`) into `dest`.
 */
export async function decryptTree(
  vol: Volume,
  lowerPaths: Array<string | Buffer>,
  dest: string | Buffer,
  opts: { passthrough?: boolean; progress?: TreeProgress } = {},
): Promise<TreeResult> {
  const res: TreeResult = { files: 0, dirs: 0, symlinks: 0, specials: 0, bytes: 0, problems: [], notes: [] };
  const notes = new XattrNotes('DEST');
  /** First copy of a multiply linked lower inode: its directory (an O_PATH descriptor) and name. */
  const links = new Map<string, { dirFd: number; name: Buffer }>();
  const linkDirs = new Map<DestDir, number>();
  const show = (lp: Buffer) => escapeName(lp.length === 0 ? Buffer.from(vol.lower.root) : Buffer.concat([Buffer.from(`${vol.lower.root}/`), lp]));
  if (opts.progress?.onTotal) {
    const count = countTree(vol.lower);
    let files = 0;
    let bytes = 0;
    for (const p of lowerPaths) {
      const [f, b] = await count(Buffer.from(p));
      files += f;
      bytes += b;
    }
    opts.progress.onTotal(files, bytes);
  }
  const problem = (lp: Buffer, e: unknown) => {
    const path = show(lp);
    res.problems.push({ path, error: isEcryptfsError(e) ? e.withPath(path) : (e as Error) });
  };

  const visitDir = async (lowerPath: Buffer, dir: DestDir): Promise<void> => {
    for (const n of await vol.lower.readdirBytes(lowerPath)) {
      const child = joinB(lowerPath, n);
      let clear: Buffer;
      try {
        clear = vol.decodeNameBytes(n);
      } catch (e) {
        problem(child, e);
        continue;
      }
      try {
        await visit(child, dir, clear, `${dir.display}/${escapeName(clear)}`);
      } catch (e) {
        problem(child, e);
      }
    }
  };

  const visit = async (lowerPath: Buffer, parent: DestDir, name: Buffer, display: string): Promise<void> => {
    const st = await vol.lower.lstat(lowerPath);
    if (st.isDirectory()) {
      const { dir, created } = openSubdir(parent, name, display, st);
      try {
        await visitDir(lowerPath, dir);
        if (created) await copyXattrs(vol.lower, lowerPath, parent.fs, name, notes, display, false);
        fs.fchmodSync(dir.fd, st.mode & 0o7777);
        fs.futimesSync(dir.fd, st.atime, st.mtime);
      } finally {
        dir.close();
      }
      res.dirs++;
      return;
    }
    const tmp = tmpName();
    try {
      if (st.isSymbolicLink()) {
        const target = await vol.readlinkLowerBytes(lowerPath);
        fs.symlinkSync(target, parent.at(tmp));
        metaByPathFd(parent, tmp, st, false);
        res.symlinks++;
      } else if (st.isFile()) {
        const key = `${st.dev}:${st.ino}`;
        const first = st.nlink > 1 ? links.get(key) : undefined;
        if (first) {
          fs.linkSync(Buffer.concat([Buffer.from(`/proc/${process.pid}/fd/${first.dirFd}/`), first.name]), parent.at(tmp));
        } else {
          res.bytes += await decryptFile(vol, lowerPath, parent, tmp, st, !!opts.passthrough, notes, display);
          if (st.nlink > 1) {
            let dirFd = linkDirs.get(parent);
            if (dirFd === undefined) {
              dirFd = fs.openSync(parent.base, O_PATH | fsc.O_DIRECTORY);
              linkDirs.set(parent, dirFd);
            }
            links.set(key, { dirFd, name: Buffer.from(name) });
          }
        }
        res.files++;
        opts.progress?.onFile?.(show(lowerPath), st.size);
      } else if (st.isFIFO() || st.isSocket() || st.isCharacterDevice() || st.isBlockDevice()) {
        await mknodAt(parent.at(tmp), st.mode, st.rdev).catch((e: NodeJS.ErrnoException) => {
          if (e.code === 'EPERM' && (st.isCharacterDevice() || st.isBlockDevice())) {
            throw new EcryptfsError('EINVAL', 'a device node can only be made by root (run decrypt as root to keep it)');
          }
          throw e;
        });
        await copyXattrs(vol.lower, lowerPath, parent.fs, tmp, notes, display, true);
        metaByPathFd(parent, tmp, st, true);
        res.specials++;
      } else {
        throw new EcryptfsError('EUNSUPPORTED', 'unknown file type');
      }
      fs.renameSync(parent.at(tmp), parent.at(name));
    } catch (e) {
      fs.rmSync(parent.at(tmp), { force: true });
      if ((e as NodeJS.ErrnoException).code === 'EISDIR') throw new EcryptfsError('EINVAL', 'DEST already has a directory of this name', display);
      throw e;
    }
  };

  const root = openDestRoot(dest);
  try {
    for (const p of lowerPaths) {
      const lp = Buffer.from(p);
      try {
        if (lp.length === 0) await visitDir(lp, root);
        else {
          const base = lp.subarray(lp.lastIndexOf(0x2f) + 1);
          const clear = vol.decodeNameBytes(base);
          // '.' and '..' pass decodeNameBytes unchanged; as a DEST name '..' would write beside DEST.
          checkClearName(clear, escapeName(base));
          await visit(lp, root, clear, `${root.display}/${escapeName(clear)}`);
        }
      } catch (e) {
        problem(lp, e);
      }
    }
  } finally {
    for (const fd of linkDirs.values()) fs.closeSync(fd);
    root.close();
  }
  res.notes = notes.notes();
  return res;
}

async function decryptFile(vol: Volume, lowerPath: Buffer, parent: DestDir, tmp: Buffer, st: Stats, passthrough: boolean, notes: XattrNotes, display: string): Promise<number> {
  const f = await EcryptfsFile.open(vol.lower, lowerPath, vol.keys, { writable: false, passthrough, xattrMetadata: true });
  try {
    const fd = fs.openSync(parent.at(tmp), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    try {
      const buf = Buffer.allocUnsafe(CHUNK);
      for (let pos = 0; pos < f.size; ) {
        const n = await f.readInto(buf, pos);
        if (n === 0) break;
        for (let done = 0; done < n; ) done += await new Promise<number>((res, rej) => fs.write(fd, buf, done, n - done, pos + done, (e, w) => (e ? rej(e) : res(w))));
        pos += n;
      }
      if (isRoot()) fs.fchownSync(fd, st.uid, st.gid);
      await copyXattrs(vol.lower, lowerPath, parent.fs, tmp, notes, display, false);
      fs.fchmodSync(fd, st.mode & 0o7777);
      fs.futimesSync(fd, st.atime, st.mtime);
    } finally {
      fs.closeSync(fd);
    }
    return f.size;
  } finally {
    await f.close();
  }
}

/** Mode, times and (as root) owner of a lower entry made by encrypt. */
async function keepMeta(lower: LowerFs, path: LowerPath, st: Stats, isLink: boolean): Promise<void> {
  if (isRoot()) await lower.lchown(path, st.uid, st.gid).catch(() => undefined);
  if (!isLink) await lower.chmod(path, st.mode & 0o7777);
  await lower.lutimes(path, st.atime, st.mtime);
}

/**
 * Encrypt clear paths into the volume. A directory's contents go into `destDir` (a clear path in
 * the volume, '' = root); a file goes to `destDir/<its name>`. Source names are read as bytes.
 */
export async function encryptTree(vol: Volume, sources: Array<string | Buffer>, destDir: string | Buffer = '', opts: { progress?: TreeProgress } = {}): Promise<TreeResult> {
  const res: TreeResult = { files: 0, dirs: 0, symlinks: 0, specials: 0, bytes: 0, problems: [], notes: [] };
  const notes = new XattrNotes('the lower directory');
  const links = new Map<string, Buffer>();
  // Sources are read through a LowerFs at '/', so names stay bytes and xattrs go one way.
  const src = new NodeLowerFs('/');
  const abs = (s: string | Buffer): Buffer => Buffer.from(resolveBytes(s)).subarray(1);
  if (opts.progress?.onTotal) {
    const count = countTree(src);
    let files = 0;
    let bytes = 0;
    for (const s of sources) {
      const [f, b] = await count(abs(s));
      files += f;
      bytes += b;
    }
    opts.progress.onTotal(files, bytes);
  }
  const show = (p: Buffer) => escapeName(Buffer.concat([SLASH, p]));

  const visit = async (srcPath: Buffer, lowerPath: Buffer, isTop: boolean): Promise<void> => {
    const st = await src.lstat(srcPath);
    if (st.isDirectory()) {
      if (!isTop) {
        await vol.lower.mkdir(lowerPath, 0o700).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'EEXIST') throw e;
        });
      }
      for (const n of await src.readdirBytes(srcPath)) {
        const child = joinB(srcPath, n);
        try {
          await visit(child, joinB(lowerPath, vol.encodeNameBytes(n)), false);
        } catch (e) {
          res.problems.push({ path: show(child), error: isEcryptfsError(e) ? e.withPath(show(child)) : (e as Error) });
        }
      }
      if (!isTop) {
        await copyXattrs(src, srcPath, vol.lower, lowerPath, notes, show(srcPath), false);
        await keepMeta(vol.lower, lowerPath, st, false);
      }
      res.dirs++;
    } else if (st.isSymbolicLink()) {
      await vol.lower.unlink(lowerPath).catch(() => undefined);
      await vol.lower.symlink(vol.encodeLinkTargetBytes(await src.readlinkBytes(srcPath)), lowerPath);
      await keepMeta(vol.lower, lowerPath, st, true);
      res.symlinks++;
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? links.get(key) : undefined;
      if (first) {
        await vol.lower.unlink(lowerPath).catch(() => undefined);
        await vol.lower.link(first, lowerPath);
      } else {
        await encryptFile(vol, src, srcPath, lowerPath, st, notes, show(srcPath));
        if (st.nlink > 1) links.set(key, lowerPath);
        res.bytes += st.size;
      }
      res.files++;
      opts.progress?.onFile?.(show(srcPath), st.size);
    } else if (st.isFIFO() || st.isSocket() || st.isCharacterDevice() || st.isBlockDevice()) {
      // The kernel keeps special files as they are below, with only the name encrypted.
      await vol.lower.unlink(lowerPath).catch(() => undefined);
      await vol.lower.mknod(lowerPath, st.mode, st.rdev).catch((e: NodeJS.ErrnoException) => {
        if (e.code === 'EPERM' && (st.isCharacterDevice() || st.isBlockDevice())) {
          throw new EcryptfsError('EINVAL', 'a device node can only be made by root (run encrypt as root to keep it)');
        }
        throw e;
      });
      await copyXattrs(src, srcPath, vol.lower, lowerPath, notes, show(srcPath), true);
      await keepMeta(vol.lower, lowerPath, st, false);
      res.specials++;
    } else {
      throw new EcryptfsError('EUNSUPPORTED', 'unknown file type');
    }
  };
  const destLower = vol.lowerPathBytes(Buffer.from(destDir));
  for (const s of sources) {
    const sp = abs(s);
    try {
      const st = await src.lstat(sp);
      if (st.isDirectory()) await visit(sp, destLower, destLower.length === 0);
      else await visit(sp, joinB(destLower, vol.encodeNameBytes(sp.subarray(sp.lastIndexOf(0x2f) + 1))), false);
    } catch (e) {
      res.problems.push({ path: show(sp), error: isEcryptfsError(e) ? e.withPath(show(sp)) : (e as Error) });
    }
  }
  res.notes = notes.notes();
  return res;
}

async function encryptFile(vol: Volume, src: LowerFs, srcPath: Buffer, lowerPath: Buffer, st: Stats, notes: XattrNotes, display: string): Promise<void> {
  const slash = lowerPath.lastIndexOf(0x2f);
  const tmpLower = joinB(slash < 0 ? Buffer.alloc(0) : lowerPath.subarray(0, slash), tmpName());
  const f = await EcryptfsFile.create(vol.lower, tmpLower, vol.keys, vol.newFileParams(), 0o600);
  try {
    const input = await src.open(srcPath, 'r');
    try {
      const buf = Buffer.allocUnsafe(CHUNK);
      for (let pos = 0; ; ) {
        const n = await input.read(buf, 0, CHUNK, pos);
        if (n === 0) break;
        await f.write(pos, buf.subarray(0, n));
        pos += n;
      }
    } finally {
      await input.close();
    }
    await f.close();
    await copyXattrs(src, srcPath, vol.lower, tmpLower, notes, display, false);
    await keepMeta(vol.lower, tmpLower, st, false);
    await vol.lower.rename(tmpLower, lowerPath);
  } catch (e) {
    await f.close().catch(() => undefined);
    await vol.lower.unlink(tmpLower).catch(() => undefined);
    throw e;
  }
}
