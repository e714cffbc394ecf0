/** Operations on directories and names: create, link, remove, rename, list (streamed, no snapshot). */
import { constants as OSC } from 'node:os';
import { openDirStream, type LowerStat } from '../../lower/at.js';
import { S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK } from '../../lower/mode.js';
import { asCaller, callerCreds, withUmask, type Creds } from '../../lower/creds.js';
import * as sys from '../../lower/sys.js';
import { ErrnoError, toErrno } from './errno.js';
import { dropName, moveName } from './names.js';
import { type Caller, type Entry, type Node } from './types.js';

import { FsCore } from './core.js';

const E = OSC.errno;

/** One listed name; `lookup` (READDIRPLUS only) answers its LOOKUP, or null for the name alone. */
export interface ListedEntry {
  name: Buffer;
  ino: number;
  mode: number;
  offset: number;
  lookup?: () => Entry | null;
}
const DT_REG = 8;
/** Fewest uncached regular files in one READDIR batch worth prefetching. */
const PREFETCH_MIN = 4;

export class FsDirOps extends FsCore {
  async mkdir(parent: number, name: string | Buffer, mode: number, ctx?: Caller): Promise<Entry> {
    return this.mkdirSync(parent, name, mode, ctx);
  }

  /**
   * The *Sync forms answer without a promise: the FUSE server then replies in the same turn and
   * keeps reading on this thread (an answer on a promise costs an event-loop turn per request).
   */
  mkdirSync(parent: number, name: string | Buffer, mode: number, ctx?: Caller): Entry {
    this.writable();
    const lowerName = this.encode(name);
    const cr = callerCreds(ctx);
    asCaller(cr, () => withUmask(ctx?.umask, () => sys.mkdirat(this.dirFd(parent), lowerName, mode & 0o7777)));
    return this.entryFor(parent, lowerName, cr);
  }

  /**
   * A FIFO, socket or device node, as the kernel module makes them: the lower inode of the same
   * type with the encrypted name, no header. (Regular files go through create.) Device nodes only
   * for root callers: the kernel checked CAP_MKNOD already; this keeps it true for any caller.
   */
  async mknod(parent: number, name: string | Buffer, mode: number, rdev: number, ctx?: Caller): Promise<Entry> {
    return this.mknodSync(parent, name, mode, rdev, ctx);
  }

  mknodSync(parent: number, name: string | Buffer, mode: number, rdev: number, ctx?: Caller): Entry {
    this.writable();
    const t = mode & S_IFMT;
    if (t !== S_IFIFO && t !== S_IFSOCK && t !== S_IFCHR && t !== S_IFBLK) throw new ErrnoError(E.EINVAL);
    if ((t === S_IFCHR || t === S_IFBLK) && (ctx?.uid ?? 0) !== 0) throw new ErrnoError(E.EPERM);
    const lowerName = this.encode(name);
    const cr = callerCreds(ctx);
    asCaller(cr, () => withUmask(ctx?.umask, () => sys.mknodat(this.dirFd(parent), lowerName, t | (mode & 0o7777), rdev)));
    return this.entryFor(parent, lowerName, cr);
  }

  async symlink(parent: number, name: string | Buffer, target: string | Buffer, ctx?: Caller): Promise<Entry> {
    this.writable();
    const lowerName = this.encode(name);
    let lowerTarget: Buffer;
    try {
      const t = typeof target === 'string' ? Buffer.from(target, 'utf8') : target;
      lowerTarget = this.encryptedView ? t : this.vol.encodeLinkTargetBytes(t);
    } catch (e) {
      throw new ErrnoError(toErrno(e));
    }
    const cr = callerCreds(ctx);
    asCaller(cr, () => sys.symlinkat(lowerTarget, this.dirFd(parent), lowerName));
    return this.entryFor(parent, lowerName, cr);
  }

  async link(nodeid: number, newParent: number, newName: string | Buffer, ctx?: Caller): Promise<Entry> {
    this.writable();
    const n = this.node(nodeid);
    const lowerName = this.encode(newName);
    const cr = callerCreds(ctx);
    asCaller(cr, () => {
      const st = sys.fstatat(this.dirFd(n.parent), n.name);
      if (st.dev !== n.dev || st.ino !== n.ino) throw new ErrnoError(E.ESTALE);
      sys.linkat(this.dirFd(n.parent), n.name, this.dirFd(newParent), lowerName, 0);
    });
    return this.entryFor(newParent, lowerName, cr);
  }

  /**
   * Lower name of an existing child: encrypted form, else a plain lower name; with the lower stat
   * of what is there (as the daemon: only to find the node; the change itself runs as the caller).
   */
  protected existingChild(parent: number, name: string | Buffer): { name: Buffer; st?: LowerStat } {
    const clear = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
    const enc = this.encode(clear);
    const statOf = (b: Buffer) => sys.fstatatOrNull(this.dirFd(parent), b);
    if (enc.equals(clear)) return { name: enc, st: statOf(enc) };
    const st = statOf(enc);
    if (st) return { name: enc, st };
    const plain = statOf(clear);
    return plain ? { name: clear, st: plain } : { name: enc };
  }

  /** The known node of a lower inode, if any. */
  protected nodeOf(st: LowerStat | undefined): Node | undefined {
    if (!st) return undefined;
    const id = this.byKey.get(this.inodeKey(st.dev, st.ino));
    return id === undefined ? undefined : this.nodes.get(id);
  }

  async unlink(parent: number, name: string | Buffer, ctx?: Caller): Promise<void> {
    this.unlinkSync(parent, name, ctx);
  }

  unlinkSync(parent: number, name: string | Buffer, ctx?: Caller): void {
    this.writable();
    const { name: lowerName, st } = this.existingChild(parent, name);
    const n = this.nodeOf(st);
    asCaller(callerCreds(ctx), () => sys.unlinkat(this.dirFd(parent), lowerName, 0));
    if (n) dropName(n, parent, lowerName);
    // Its inode number may come back for a new file of the same size within one ctime tick.
    if (st) this.clearSizes.delete(this.inodeKey(st.dev, st.ino));
  }

  async rmdir(parent: number, name: string | Buffer, ctx?: Caller): Promise<void> {
    this.rmdirSync(parent, name, ctx);
  }

  rmdirSync(parent: number, name: string | Buffer, ctx?: Caller): void {
    this.writable();
    const { name: lowerName } = this.existingChild(parent, name);
    asCaller(callerCreds(ctx), () => sys.unlinkat(this.dirFd(parent), lowerName, sys.AT_REMOVEDIR));
  }

  async rename(parent: number, name: string | Buffer, newParent: number, newName: string | Buffer, flags = 0, ctx?: Caller): Promise<void> {
    this.renameSync(parent, name, newParent, newName, flags, ctx);
  }

  renameSync(parent: number, name: string | Buffer, newParent: number, newName: string | Buffer, flags = 0, ctx?: Caller): void {
    this.writable();
    if (flags & ~(sys.RENAME_NOREPLACE | sys.RENAME_EXCHANGE)) throw new ErrnoError(E.EINVAL);
    const src = this.existingChild(parent, name);
    const from = src.name;
    const dst = flags & sys.RENAME_EXCHANGE ? this.existingChild(newParent, newName) : undefined;
    const to = dst ? dst.name : this.encode(newName);
    const a = this.nodeOf(src.st);
    // With EXCHANGE the entry at `to` moves to `from`; without, it is replaced (that name is gone).
    const bSt = dst ? dst.st : sys.fstatatOrNull(this.dirFd(newParent), to);
    const b = this.nodeOf(bSt);
    asCaller(callerCreds(ctx), () => sys.renameat2(this.dirFd(parent), from, this.dirFd(newParent), to, flags));
    // A file renamed over loses that name; its inode number may come back (see unlink).
    if (bSt && !(flags & sys.RENAME_EXCHANGE)) this.clearSizes.delete(this.inodeKey(bSt.dev, bSt.ino));
    if (b && b !== a) {
      if (flags & sys.RENAME_EXCHANGE) moveName(b, newParent, to, parent, from);
      else dropName(b, newParent, to);
    }
    if (a) moveName(a, parent, from, newParent, to);
  }

  opendir(nodeid: number, ctx?: Caller): number {
    const uid = ctx?.uid ?? 0;
    this.charge(uid, 1);
    try {
      const stream = asCaller(callerCreds(ctx), () => openDirStream(this.dirFd(nodeid)));
      const fh = this.nextDirHandle++;
      this.dirStreams.set(fh, { stream, nodeid, uid });
      return fh;
    } catch (e) {
      this.charge(uid, -1);
      throw e;
    }
  }

  /**
   * Entries of an open directory from position `offset` (0: start), each with the position after
   * it as its offset. `max` bounds how many lower entries are read at once.
   */
  readdirAt(fh: number, offset: number, max = 256, plus = false, ctx?: Caller): ListedEntry[] {
    const d = this.dirStreams.get(fh);
    if (!d) throw new ErrnoError(E.EBADF);
    const out: ListedEntry[] = [];
    // READDIRPLUS answers what LOOKUP would, which the kernel only sends for a caller that may
    // search the directory (default_permissions): checked once per batch as the caller.
    const cr = callerCreds(ctx);
    if (plus && cr && typeof asCaller(cr, () => sys.fstatatOrErrno(this.dirFd(d.nodeid), '.')) === 'number') plus = false;
    let at = offset;
    while (out.length === 0) {
      const got = d.stream.read(at, max);
      if (got.length === 0) break;
      this.prefetchHeaders(d.nodeid, got);
      for (const { d: ent, next } of got) {
        at = next;
        const dot = ent.name.length <= 2 && (ent.name.equals(Buffer.from('.')) || ent.name.equals(Buffer.from('..')));
        const name = dot ? ent.name : this.decode(ent.name);
        if (name === undefined) continue;
        const e: ListedEntry = { name, ino: ent.ino, mode: ent.type << 12, offset: next };
        if (plus && !dot) {
          const lower = ent.name;
          e.lookup = () => this.plusEntry(d.nodeid, lower, ent.ino, cr);
        }
        out.push(e);
      }
    }
    return out;
  }

  /**
   * A listed name's LOOKUP answer for READDIRPLUS, or null for the name alone. Null for a node
   * the kernel holds (lookup count > 0) with an entry sent within the entry timeout: a full entry
   * would make it forget the inode's cached ACLs and refresh its attributes (fs/fuse/readdir.c
   * fuse_direntplus_link), so each warm `ls -l` would ask for the ACLs again; with nodeid 0 it
   * keeps what it has. Past the timeout the kernel would send a LOOKUP for the name anyway (and
   * forget the ACLs then: dir.c fuse_dentry_revalidate), so the entry goes along instead.
   * Null also for a name that no longer stats or whose attributes fail: the kernel then looks it
   * up itself.
   */
  protected plusEntry(parent: number, lowerName: Buffer, ino: number, cr: Creds | undefined): Entry | null {
    const p = this.nodes.get(parent);
    if (!p) return null;
    if (this.heldFresh(this.byKey.get(this.inodeKey(p.dev, ino)))) return null;
    const st = sys.fstatatOrErrno(this.dirFd(parent), lowerName);
    if (typeof st === 'number' || this.heldFresh(this.byKey.get(this.inodeKey(st.dev, st.ino)))) return null;
    const n = this.remember(parent, lowerName, st);
    try {
      return { nodeid: n.nodeid, attr: this.attrOf(n, st, cr) };
    } catch {
      this.forget(n.nodeid, 1); // not sent: the count remember() took goes back
      return null;
    }
  }

  private heldFresh(nodeid: number | undefined): boolean {
    const n = nodeid === undefined ? undefined : this.nodes.get(nodeid);
    return n !== undefined && n.nlookup > 0 && performance.now() - n.entryAt < this.entryTimeoutMs;
  }

  /**
   * Regular files just listed whose clear size is not cached: `ls -l` looks each up next, so
   * their header reads start now, side by side, on the prefetch worker (see prefetch.ts). A few
   * names are not worth the hand-off: the lookups read them as soon.
   */
  private prefetchHeaders(nodeid: number, got: Array<{ d: { name: Buffer; ino: number; type: number } }>): void {
    if (this.encryptedView || got.length < PREFETCH_MIN) return;
    const n = this.nodes.get(nodeid);
    if (!n || (this.rootInMemory && n.dev === this.rootDev)) return;
    const names: Buffer[] = [];
    for (const { d: ent } of got) if (ent.type === DT_REG && !this.clearSizes.has(this.inodeKey(n.dev, ent.ino))) names.push(ent.name);
    if (names.length < PREFETCH_MIN) return;
    try {
      this.prefetch.hint(this.dirFd(nodeid), names);
    } catch {
      // only a hint: the listing goes on without it
    }
  }

  releasedir(fh: number): void {
    const d = this.dirStreams.get(fh);
    if (!d) return;
    this.dirStreams.delete(fh);
    d.stream.close();
    this.charge(d.uid, -1);
  }

  /** A whole listing (without '.' and '..'): for tests and small tools; the mount streams. */
  async readdir(nodeid: number, ctx?: Caller): Promise<Array<{ name: string; ino: number; type: 'file' | 'dir' | 'symlink' | 'other' }>> {
    const fh = this.opendir(nodeid, ctx);
    const out: Array<{ name: string; ino: number; type: 'file' | 'dir' | 'symlink' | 'other' }> = [];
    try {
      let off = 0;
      for (;;) {
        const got = this.readdirAt(fh, off);
        if (got.length === 0) break;
        for (const e of got) {
          off = e.offset;
          const s = e.name.toString('utf8');
          if (s === '.' || s === '..') continue;
          const t = e.mode & S_IFMT;
          out.push({ name: s, ino: e.ino, type: t === S_IFREG ? 'file' : t === S_IFDIR ? 'dir' : t === S_IFLNK ? 'symlink' : 'other' });
        }
      }
    } finally {
      this.releasedir(fh);
    }
    return out;
  }
}
