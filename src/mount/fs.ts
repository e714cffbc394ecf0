/**
 * The eCryptfs filesystem as a FUSE server sees it: inode-based operations over a Volume,
 * returning plain attribute objects and throwing errno errors. No FUSE encoding here (see
 * fuse-adapter.ts), so this is testable without a mount.
 *
 * Behaviour follows the kernel module: regular files are eCryptfs files (one shared lower file
 * per inode, as the kernel keeps since LP #870326); names and symlink targets are encrypted when
 * the volume has an FNEK; a lower file that is not eCryptfs lists but fails to open with EIO
 * unless passthrough; the ecryptfs header xattr is hidden; statfs reports the encrypted name limit.
 */
import type { Stats } from 'node:fs';
import { constants as OSC } from 'node:os';
import { constants as C } from 'node:fs';
import { isEcryptfsError } from '../errors.js';
import { buildHeaderRegion, FLAG_METADATA_IN_XATTR, parseHeader } from '../format/header.js';
import { EcryptfsFile, peekClearSize, XATTR_NAME } from '../volume/file.js';
import type { Volume } from '../volume/volume.js';

export class ErrnoError extends Error {
  constructor(readonly errno: number, message?: string) {
    super(message ?? `errno ${errno}`);
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
      case 'ENOKEY': return E.EIO;
      default: return E.EIO;
    }
  }
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code && code in E) return (E as Record<string, number>)[code];
  return E.EIO;
}

export interface Attr {
  ino: number;
  size: number;
  blocks: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  blksize: number;
}

export interface Entry {
  nodeid: number;
  attr: Attr;
}

interface Node {
  nodeid: number;
  parent: number;
  lowerName: string;
  nlookup: number;
  lowerIno: number;
}

interface OpenState {
  file: EcryptfsFile;
  refs: number;
  writable: boolean;
}

export interface FsOptions {
  readOnly?: boolean;
  encryptedView?: boolean;
  /** Called for things an admin should know (undecodable names, bad headers); never secrets. */
  log?: (msg: string) => void;
}

export const ROOT = 1;

export class EcryptfsFs {
  private readonly nodes = new Map<number, Node>();
  private readonly byLowerIno = new Map<number, number>();
  private readonly open = new Map<number, OpenState>();
  private readonly handles = new Map<number, { nodeid: number; append: boolean }>();
  private readonly dirSnapshots = new Map<number, Array<{ name: string | Buffer; ino: number; mode: number }>>();
  private nextDirHandle = 1;
  private nextNode = 2;
  private nextHandle = 1;
  readonly readOnly: boolean;
  readonly encryptedView: boolean;
  private readonly log: (m: string) => void;

  constructor(readonly vol: Volume, opts: FsOptions = {}) {
    this.encryptedView = !!opts.encryptedView;
    this.readOnly = !!opts.readOnly || this.encryptedView;
    this.log = opts.log ?? (() => undefined);
    this.nodes.set(ROOT, { nodeid: ROOT, parent: ROOT, lowerName: '', nlookup: 1, lowerIno: 0 });
  }

  private node(nodeid: number): Node {
    const n = this.nodes.get(nodeid);
    if (!n) throw new ErrnoError(E.ESTALE);
    return n;
  }

  lowerPathOf(nodeid: number): string {
    const parts: string[] = [];
    let n = this.node(nodeid);
    while (n.nodeid !== ROOT) {
      parts.push(n.lowerName);
      n = this.node(n.parent);
    }
    return parts.reverse().join('/');
  }

  private childPath(parent: number, lowerName: string): string {
    const p = this.lowerPathOf(parent);
    return p === '' ? lowerName : `${p}/${lowerName}`;
  }

  private writable(): void {
    if (this.readOnly) throw new ErrnoError(E.EROFS);
  }

  private encode(name: string): string {
    if (this.encryptedView) return name;
    try {
      return this.vol.encodeName(name);
    } catch (e) {
      throw new ErrnoError(toErrno(e));
    }
  }

  private decode(lowerName: string): string | undefined {
    if (this.encryptedView) return lowerName;
    try {
      return this.vol.decodeName(lowerName);
    } catch (e) {
      this.log(`hiding ${this.vol.lower.root}/${lowerName}: ${(e as Error).message}`);
      return undefined;
    }
  }

  /** Clear size and attributes of a lower entry. */
  private async attrOf(lowerPath: string, st: Stats, nodeid?: number): Promise<Attr> {
    let size = st.size;
    if (st.isFile()) {
      const state = nodeid === undefined ? undefined : this.open.get(nodeid);
      if (this.encryptedView) {
        const x = await this.vol.lower.getxattr(lowerPath, XATTR_NAME).catch(() => undefined);
        size = st.size + (x ? 8192 : 0);
      } else if (state) size = state.file.size;
      else size = (await peekClearSize(this.vol.lower, lowerPath, true).catch(() => undefined)) ?? st.size;
    } else if (st.isSymbolicLink() && !this.encryptedView) {
      const t = await this.vol.readlinkLower(lowerPath).catch(() => undefined);
      if (t !== undefined) size = Buffer.byteLength(t);
    }
    return {
      ino: st.ino, size, blocks: st.blocks, atimeMs: st.atimeMs, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs,
      mode: st.mode, nlink: st.nlink, uid: st.uid, gid: st.gid, rdev: st.rdev, blksize: 4096,
    };
  }

  private remember(parent: number, lowerName: string, st: Stats): number {
    let id = this.byLowerIno.get(st.ino);
    let n = id === undefined ? undefined : this.nodes.get(id);
    if (!n) {
      id = this.nextNode++;
      n = { nodeid: id, parent, lowerName, nlookup: 0, lowerIno: st.ino };
      this.nodes.set(id, n);
      this.byLowerIno.set(st.ino, id);
    } else {
      n.parent = parent;
      n.lowerName = lowerName;
    }
    n.nlookup++;
    return n.nodeid;
  }

  private async entryFor(parent: number, lowerName: string): Promise<Entry> {
    const p = this.childPath(parent, lowerName);
    const st = await this.vol.lower.lstat(p);
    const nodeid = this.remember(parent, lowerName, st);
    return { nodeid, attr: await this.attrOf(p, st, nodeid) };
  }

  async lookup(parent: number, name: string): Promise<Entry> {
    const enc = this.encode(name);
    try {
      return await this.entryFor(parent, enc);
    } catch (e) {
      // Plain names put straight into the lower directory are found too (as in the seed).
      if (enc !== name && (e as NodeJS.ErrnoException).code === 'ENOENT') return this.entryFor(parent, name);
      throw e;
    }
  }

  forget(nodeid: number, n: number): void {
    const node = this.nodes.get(nodeid);
    if (!node || nodeid === ROOT) return;
    node.nlookup -= n;
    if (node.nlookup <= 0 && !this.open.has(nodeid)) {
      this.nodes.delete(nodeid);
      if (this.byLowerIno.get(node.lowerIno) === nodeid) this.byLowerIno.delete(node.lowerIno);
    }
  }

  async getattr(nodeid: number): Promise<Attr> {
    const p = this.lowerPathOf(nodeid);
    const state = this.open.get(nodeid);
    try {
      return await this.attrOf(p, await this.vol.lower.lstat(p), nodeid);
    } catch (e) {
      // An open file whose name was unlinked still has attributes (fstat of its lower file).
      if (!state || (e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      const st = await state.file.lowerStat();
      return { ino: st.ino, size: state.file.size, blocks: st.blocks, atimeMs: st.atimeMs, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, mode: st.mode, nlink: st.nlink, uid: st.uid, gid: st.gid, rdev: st.rdev, blksize: 4096 };
    }
  }

  async setattr(nodeid: number, a: { mode?: number; uid?: number; gid?: number; size?: number; atimeMs?: number; mtimeMs?: number; fh?: number }): Promise<Attr> {
    this.writable();
    const p = this.lowerPathOf(nodeid);
    if (a.size !== undefined) {
      const st = await this.vol.lower.lstat(p);
      if (st.isDirectory()) throw new ErrnoError(E.EISDIR);
      await this.withFile(nodeid, true, (f) => f.truncate(a.size!, this.vol.keys, this.vol.newFileParams()));
    }
    if (a.mode !== undefined) await this.vol.lower.chmod(p, a.mode & 0o7777);
    if (a.uid !== undefined || a.gid !== undefined) {
      const st = await this.vol.lower.lstat(p);
      await this.vol.lower.lchown(p, a.uid ?? st.uid, a.gid ?? st.gid);
    }
    if (a.atimeMs !== undefined || a.mtimeMs !== undefined) {
      const st = await this.vol.lower.lstat(p);
      await this.vol.lower.lutimes(p, (a.atimeMs ?? st.atimeMs) / 1000, (a.mtimeMs ?? st.mtimeMs) / 1000);
    }
    return this.getattr(nodeid);
  }

  async readlink(nodeid: number): Promise<string> {
    const p = this.lowerPathOf(nodeid);
    if (this.encryptedView) return this.vol.lower.readlink(p);
    try {
      return await this.vol.readlinkLower(p);
    } catch (e) {
      throw new ErrnoError(toErrno(e));
    }
  }

  private async afterCreate(p: string, uid: number, gid: number): Promise<void> {
    if (process.getuid?.() === 0) await this.vol.lower.lchown(p, uid, gid).catch(() => undefined);
  }

  async mkdir(parent: number, name: string, mode: number, uid: number, gid: number): Promise<Entry> {
    this.writable();
    const lowerName = this.encode(name);
    const p = this.childPath(parent, lowerName);
    await this.vol.lower.mkdir(p, mode & 0o7777);
    await this.afterCreate(p, uid, gid);
    return this.entryFor(parent, lowerName);
  }

  async symlink(parent: number, name: string, target: string, uid: number, gid: number): Promise<Entry> {
    this.writable();
    const lowerName = this.encode(name);
    const p = this.childPath(parent, lowerName);
    let lowerTarget: string;
    try {
      lowerTarget = this.vol.encodeLinkTarget(target);
    } catch (e) {
      throw new ErrnoError(toErrno(e));
    }
    await this.vol.lower.symlink(lowerTarget, p);
    await this.afterCreate(p, uid, gid);
    return this.entryFor(parent, lowerName);
  }

  async link(nodeid: number, newParent: number, newName: string): Promise<Entry> {
    this.writable();
    const lowerName = this.encode(newName);
    await this.vol.lower.link(this.lowerPathOf(nodeid), this.childPath(newParent, lowerName));
    return this.entryFor(newParent, lowerName);
  }

  /** Lower name of an existing child: encrypted form, else a plain lower name. */
  private async existingChild(parent: number, name: string): Promise<string> {
    const enc = this.encode(name);
    if (enc === name) return enc;
    const ok = await this.vol.lower.lstat(this.childPath(parent, enc)).then(() => true, () => false);
    if (ok) return enc;
    const plain = await this.vol.lower.lstat(this.childPath(parent, name)).then(() => true, () => false);
    return plain ? name : enc;
  }

  async unlink(parent: number, name: string): Promise<void> {
    this.writable();
    await this.vol.lower.unlink(this.childPath(parent, await this.existingChild(parent, name)));
  }

  async rmdir(parent: number, name: string): Promise<void> {
    this.writable();
    await this.vol.lower.rmdir(this.childPath(parent, await this.existingChild(parent, name)));
  }

  async rename(parent: number, name: string, newParent: number, newName: string, flags = 0): Promise<void> {
    this.writable();
    const from = await this.existingChild(parent, name);
    const to = this.encode(newName);
    const RENAME_NOREPLACE = 1;
    if (flags & ~RENAME_NOREPLACE) throw new ErrnoError(E.EINVAL);
    const toPath = this.childPath(newParent, to);
    if (flags & RENAME_NOREPLACE) {
      const exists = await this.vol.lower.lstat(toPath).then(() => true, () => false);
      if (exists) throw new ErrnoError(E.EEXIST);
    }
    const st = await this.vol.lower.lstat(this.childPath(parent, from));
    await this.vol.lower.rename(this.childPath(parent, from), toPath);
    const id = this.byLowerIno.get(st.ino);
    const n = id === undefined ? undefined : this.nodes.get(id);
    if (n) {
      n.parent = newParent;
      n.lowerName = to;
    }
  }

  async readdir(nodeid: number): Promise<Array<{ name: string; ino: number; type: 'file' | 'dir' | 'symlink' | 'other' }>> {
    const p = this.lowerPathOf(nodeid);
    const out: Array<{ name: string; ino: number; type: 'file' | 'dir' | 'symlink' | 'other' }> = [];
    for (const lowerName of await this.vol.lower.readdir(p)) {
      const name = this.decode(lowerName);
      if (name === undefined) continue;
      const st = await this.vol.lower.lstat(p === '' ? lowerName : `${p}/${lowerName}`).catch(() => undefined);
      if (!st) continue;
      out.push({ name, ino: st.ino, type: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other' });
    }
    return out;
  }

  /** Keep a directory listing for one opendir..releasedir (stable readdir offsets). */
  snapshotDir(_nodeid: number, entries: Array<{ name: string | Buffer; ino: number; mode: number }>): number {
    const fh = this.nextDirHandle++;
    this.dirSnapshots.set(fh, entries);
    return fh;
  }

  dirSnapshot(fh: number): Array<{ name: string | Buffer; ino: number; mode: number }> {
    const d = this.dirSnapshots.get(fh);
    if (!d) throw new ErrnoError(E.EBADF);
    return d;
  }

  dropDirSnapshot(fh: number): void {
    this.dirSnapshots.delete(fh);
  }

  async statfs(): Promise<{ blocks: number; bfree: number; bavail: number; files: number; ffree: number; bsize: number; namelen: number; frsize: number }> {
    const s = await this.vol.lower.statfs('');
    return { blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, bsize: s.bsize, frsize: s.bsize, namelen: this.vol.nameMax };
  }

  // ---- open files ----

  private async acquire(nodeid: number, write: boolean): Promise<OpenState> {
    let s = this.open.get(nodeid);
    if (s && write && !s.writable) {
      // Reopen read-write (the shared lower file must serve every handle).
      const f = await this.openLower(nodeid, true);
      await s.file.close();
      s.file = f;
      s.writable = true;
    }
    if (!s) {
      let writable = !this.readOnly;
      let f: EcryptfsFile;
      try {
        f = await this.openLower(nodeid, writable);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (write || (code !== 'EACCES' && code !== 'EROFS' && code !== 'EPERM')) throw e;
        writable = false;
        f = await this.openLower(nodeid, false);
      }
      s = { file: f, refs: 0, writable };
      this.open.set(nodeid, s);
    }
    s.refs++;
    return s;
  }

  private async openLower(nodeid: number, write: boolean): Promise<EcryptfsFile> {
    const p = this.lowerPathOf(nodeid);
    try {
      return await EcryptfsFile.open(this.vol.lower, p, this.vol.keys, { writable: write, passthrough: this.vol.passthrough || this.encryptedView, xattrMetadata: true });
    } catch (e) {
      if (isEcryptfsError(e)) {
        this.log(`${this.vol.lower.abs(p)}: ${e.message}`);
        throw new ErrnoError(E.EIO, e.message);
      }
      throw e;
    }
  }

  private async release0(nodeid: number): Promise<void> {
    const s = this.open.get(nodeid);
    if (!s) return;
    if (--s.refs <= 0) {
      this.open.delete(nodeid);
      await s.file.close();
      const n = this.nodes.get(nodeid);
      if (n && n.nlookup <= 0) this.forget(nodeid, 0);
    }
  }

  private async withFile<T>(nodeid: number, write: boolean, fn: (f: EcryptfsFile) => Promise<T>): Promise<T> {
    const s = await this.acquire(nodeid, write);
    try {
      return await fn(s.file);
    } finally {
      await this.release0(nodeid);
    }
  }

  /** Open: returns a handle. flags are open(2) flags. */
  async openFile(nodeid: number, flags: number): Promise<number> {
    const acc = flags & 3;
    const write = acc === C.O_WRONLY || acc === C.O_RDWR;
    if (write) this.writable();
    const s = await this.acquire(nodeid, write);
    if (write && flags & C.O_TRUNC) await s.file.truncate(0, this.vol.keys, this.vol.newFileParams());
    const fh = this.nextHandle++;
    this.handles.set(fh, { nodeid, append: !!(flags & C.O_APPEND) });
    return fh;
  }

  async create(parent: number, name: string, mode: number, flags: number, uid: number, gid: number): Promise<{ entry: Entry; fh: number }> {
    this.writable();
    const lowerName = this.encode(name);
    const p = this.childPath(parent, lowerName);
    let f: EcryptfsFile;
    try {
      f = await EcryptfsFile.create(this.vol.lower, p, this.vol.keys, this.vol.newFileParams(), mode & 0o7777);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && !(flags & C.O_EXCL)) {
        const entry = await this.lookup(parent, name);
        return { entry, fh: await this.openFile(entry.nodeid, flags) };
      }
      throw e;
    }
    await this.afterCreate(p, uid, gid);
    const entry = await this.entryFor(parent, lowerName);
    const old = this.open.get(entry.nodeid);
    if (old) await old.file.close();
    this.open.set(entry.nodeid, { file: f, refs: 1, writable: true });
    const fh = this.nextHandle++;
    this.handles.set(fh, { nodeid: entry.nodeid, append: !!(flags & C.O_APPEND) });
    return { entry, fh };
  }

  private handle(fh: number): { nodeid: number; append: boolean; state: OpenState } {
    const h = this.handles.get(fh);
    const state = h && this.open.get(h.nodeid);
    if (!h || !state) throw new ErrnoError(E.EBADF);
    return { ...h, state };
  }

  async read(fh: number, offset: number, size: number): Promise<Buffer> {
    const { state, nodeid } = this.handle(fh);
    if (this.encryptedView) return this.readEncryptedView(nodeid, offset, size);
    try {
      return await state.file.read(offset, size);
    } catch (e) {
      if (isEcryptfsError(e)) {
        this.log(e.message);
        throw new ErrnoError(E.EIO);
      }
      throw e;
    }
  }

  /** ecryptfs_encrypted_view: the lower bytes, with a header built from the xattr when there is one. */
  private async readEncryptedView(nodeid: number, offset: number, size: number): Promise<Buffer> {
    const p = this.lowerPathOf(nodeid);
    const x = await this.vol.lower.getxattr(p, XATTR_NAME).catch(() => undefined);
    const head = x ? headerFromXattr(x) : Buffer.alloc(0);
    const f = await this.vol.lower.open(p, 'r');
    try {
      const st = await f.stat();
      const total = head.length + st.size;
      const end = Math.min(total, offset + size);
      if (offset >= end) return Buffer.alloc(0);
      const out = Buffer.alloc(end - offset);
      let o = 0;
      if (offset < head.length) {
        o = head.copy(out, 0, offset, Math.min(head.length, end));
      }
      const lowerStart = Math.max(0, offset - head.length) ;
      if (o < out.length) await f.read(out, o, out.length - o, lowerStart);
      return out;
    } finally {
      await f.close();
    }
  }

  async write(fh: number, offset: number, data: Buffer): Promise<number> {
    this.writable();
    const { state, append } = this.handle(fh);
    if (!state.writable) throw new ErrnoError(E.EBADF);
    const pos = append ? state.file.size : offset;
    try {
      return await state.file.write(pos, data, this.vol.keys, this.vol.newFileParams());
    } catch (e) {
      if (isEcryptfsError(e)) {
        this.log(e.message);
        throw new ErrnoError(E.EIO);
      }
      throw e;
    }
  }

  async fsync(fh: number): Promise<void> {
    const { state } = this.handle(fh);
    if (state.writable) await state.file.sync();
  }

  async release(fh: number): Promise<void> {
    const h = this.handles.get(fh);
    if (!h) return;
    this.handles.delete(fh);
    await this.release0(h.nodeid);
  }

  // ---- xattrs: user.* pass through (stored in clear, as the kernel does); the header is hidden ----

  async getxattr(nodeid: number, name: string): Promise<Buffer> {
    if (name === XATTR_NAME && !this.encryptedView) throw new ErrnoError(E.ENODATA);
    // The kernel asks for security.capability before every write (to drop file capabilities);
    // file capabilities are not kept on encrypted files, so answer without a lower round trip.
    if (name === 'security.capability') throw new ErrnoError(E.ENODATA);
    const v = await this.vol.lower.getxattr(this.lowerPathOf(nodeid), name);
    if (v === undefined) throw new ErrnoError(E.ENODATA);
    return v;
  }

  async setxattr(nodeid: number, name: string, value: Buffer, flags: number): Promise<void> {
    this.writable();
    if (name === XATTR_NAME) throw new ErrnoError(E.EPERM);
    try {
      await this.vol.lower.setxattr(this.lowerPathOf(nodeid), name, value, flags);
    } catch (e) {
      throw new ErrnoError((e as { errno?: number }).errno ?? E.EIO);
    }
  }

  async listxattr(nodeid: number): Promise<string[]> {
    const names = await this.vol.lower.listxattr(this.lowerPathOf(nodeid));
    return names.filter((n) => n !== XATTR_NAME);
  }

  async removexattr(nodeid: number, name: string): Promise<void> {
    this.writable();
    if (name === XATTR_NAME) throw new ErrnoError(E.EPERM);
    try {
      await this.vol.lower.removexattr(this.lowerPathOf(nodeid), name);
    } catch (e) {
      throw new ErrnoError((e as { errno?: number }).errno ?? E.EIO);
    }
  }

  /** Close every open file (unmount). */
  async closeAll(): Promise<void> {
    for (const s of this.open.values()) await s.file.close().catch(() => undefined);
    this.open.clear();
    this.handles.clear();
  }
}

/** The in-file header the kernel synthesises from a user.ecryptfs xattr for encrypted view. */
export function headerFromXattr(x: Buffer): Buffer {
  const h = parseHeader(x, 'xattr');
  return buildHeaderRegion({ size: h.size, flags: h.flags & ~FLAG_METADATA_IN_XATTR, keys: h.keys }, x.subarray(8, 12));
}


