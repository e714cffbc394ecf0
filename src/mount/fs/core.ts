/**
 * The state every operation shares: the node table keyed by lower (dev, ino), directory
 * descriptors, the name codec and its caches, attributes and clear sizes, lookup, getattr,
 * readlink, statfs, the per-user descriptor quota. Operations build on it by kind:
 * dir-ops.ts, file-ops.ts, xattr-ops.ts (as gocryptfs splits its fusefrontend).
 */
import * as nodefs from 'node:fs';
import { constants as C } from 'node:fs';
import { constants as OSC } from 'node:os';
import { hasMarker } from '../../format/header.js';
import { DirStream, FdLru, isDir, isLnk, isReg, openDirAt, openDirPath, openFileAt, S_IFMT, type LowerStat } from '../../lower/at.js';
import { asCaller, callerCreds, type Creds } from '../../lower/creds.js';
import * as sys from '../../lower/sys.js';
import { XATTR_NAME } from '../../volume/file.js';
import type { Volume } from '../../volume/volume.js';
import { ErrnoError, toErrno } from './errno.js';
import { remember, setName } from './names.js';
import { ClearSizes } from './sizes.js';
import { fdLimit, lowerMaxBytes } from './limits.js';
import { HeaderPrefetch } from './prefetch.js';
import { Node, ROOT, type Attr, type Caller, type Entry, type FsOptions, type OpenState } from './types.js';

const E = OSC.errno;

/** statfs f_type of the filesystems whose pages never leave memory. */
const TMPFS_MAGIC = 0x01021994;
const RAMFS_MAGIC = 0x858458f6;

/** Lower inodes whose clear size is remembered (about 100 bytes each). */
const CLEAR_SIZE_CACHE = 100_000;

export class FsCore {
  protected readonly nodes = new Map<number, Node>();

  /**
   * Name translations both ways (pure functions of the name and the key, so never stale): each
   * costs a cipher set-up and a hash, and `ls -l` or a lookup asks for the same names again.
   */
  protected readonly encoded = new Map<string, string>();

  protected readonly decoded = new Map<string, string>();

  /** Clear sizes by lower inode (see peekSize). */
  protected readonly clearSizes = new ClearSizes(CLEAR_SIZE_CACHE);

  /** Node ids by lower inode (inodeKey): a number key, no string per node. */
  protected readonly byKey = new Map<number | string, number>();

  /** The lower root's device: inodes on it are keyed by number alone. */
  protected readonly rootDev: number;

  protected readonly open = new Map<number, OpenState>();

  protected readonly handles = new Map<number, { nodeid: number; append: boolean }>();

  protected readonly dirStreams = new Map<number, { stream: DirStream; nodeid: number; uid: number }>();

  protected readonly fdsByUid = new Map<number, number>();

  protected readonly dirs: FdLru<number>;

  protected readonly rootFd: number;

  protected readonly hidden = new Set<string>();

  protected nextDirHandle = 1;

  protected nextNode = 2;

  protected nextHandle = 1;

  readonly readOnly: boolean;

  readonly encryptedView: boolean;

  /** Largest clear size the lower filesystem can hold (EFBIG past it). */
  readonly maxSize: number;

  protected readonly log: (m: string) => void;

  protected readonly syncIoMax: number;

  protected readonly perUserFds: number;

  /** Starts the header reads of listed files in the background (cold `ls -l`). */
  protected readonly prefetch: HeaderPrefetch;

  /**
   * The lower root's filesystem keeps every page in memory (tmpfs, ramfs): a header read never
   * waits on a device, so its directories are not prefetched (the hand-off to the worker and the
   * worker's five syscalls per file only took CPU from the listing itself).
   */
  protected readonly rootInMemory: boolean;

  /** How long (ms) the kernel keeps a name it was sent (the FUSE entry timeout; serve sets both). */
  entryTimeoutMs = 1000;

  /** Set when the daemon is stopping: long operations end at their next chunk. */
  stopping = false;

  constructor(readonly vol: Volume, opts: FsOptions = {}) {
    this.encryptedView = !!opts.encryptedView;
    this.readOnly = !!opts.readOnly || this.encryptedView;
    this.log = opts.log ?? (() => undefined);
    this.prefetch = new HeaderPrefetch(this.log);
    this.syncIoMax = opts.syncIoMax ?? 4 << 20;
    const limit = fdLimit();
    this.perUserFds = opts.perUserFds ?? Math.max(64, Math.floor(limit / 4));
    this.dirs = new FdLru(opts.dirCache ?? Math.max(16, Math.min(1024, Math.floor(limit / 16))));
    // The lower root, walked from / without following any link (the path was resolved by the
    // launcher), unless the lower layer already holds it so (the daemon's, opened before Volume.open).
    this.rootFd = vol.lower.rootFd ?? openDirPath(vol.lower.root);
    const st = sys.fstat(this.rootFd);
    this.rootDev = st.dev;
    const root = new Node(ROOT, ROOT, '', st.dev, st.ino, st.mode & S_IFMT);
    root.nlookup = 1;
    this.nodes.set(ROOT, root);
    const sfs = nodefs.statfsSync(sys.fdPath(this.rootFd));
    this.rootInMemory = sfs.type === TMPFS_MAGIC || sfs.type === RAMFS_MAGIC;
    // The clear size whose lower file (8 KiB header + whole extents) still fits.
    this.maxSize = Math.max(0, Math.floor((lowerMaxBytes(sfs) - 8192) / 4096) * 4096);
  }

  /** The key of a lower inode in byKey and clearSizes: its number on the root's device, else dev:ino. */
  protected inodeKey(dev: number, ino: number): number | string {
    return dev === this.rootDev ? ino : `${dev}:${ino}`;
  }

  protected node(nodeid: number): Node {
    const n = this.nodes.get(nodeid);
    if (!n) throw new ErrnoError(E.ESTALE);
    return n;
  }

  /** Lower path of a node relative to the lower root (for messages only; never opened). */
  lowerPathOf(nodeid: number): string {
    const parts: string[] = [];
    let n = this.node(nodeid);
    while (n.nodeid !== ROOT) {
      parts.push(n.name.toString('utf8'));
      n = this.node(n.parent);
    }
    return parts.reverse().join('/');
  }

  protected label(parent: number, name: Buffer): string {
    const p = this.lowerPathOf(parent);
    return `${this.vol.lower.root}/${p === '' ? '' : `${p}/`}${name.toString('utf8')}`;
  }

  /**
   * The directory descriptor of a directory node: from the LRU, else opened from its parent's
   * (recursively up to the root), no-follow and checked to be the node's inode. Use at once.
   */
  protected dirFd(nodeid: number): number {
    if (nodeid === ROOT) return this.rootFd;
    const cached = this.dirs.get(nodeid);
    if (cached !== undefined) return cached;
    const n = this.node(nodeid);
    if (!isDir(n.type)) throw new ErrnoError(E.ENOTDIR);
    const fd = openDirAt(this.dirFd(n.parent), n.name, n);
    this.dirs.put(nodeid, fd);
    return fd;
  }

  protected writable(): void {
    if (this.readOnly) throw new ErrnoError(E.EROFS);
  }

  protected encode(name: string | Buffer): Buffer {
    const b = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
    if (this.encryptedView) return b;
    const key = b.toString('latin1');
    const hit = this.encoded.get(key);
    if (hit !== undefined) return Buffer.from(hit, 'latin1');
    let lower: Buffer;
    try {
      lower = this.vol.encodeNameBytes(b);
    } catch (e) {
      throw new ErrnoError(toErrno(e));
    }
    remember(this.encoded, key, lower);
    return lower;
  }

  protected decode(lowerName: Buffer): Buffer | undefined {
    if (this.encryptedView) return lowerName;
    const key = lowerName.toString('latin1');
    const hit = this.decoded.get(key);
    if (hit !== undefined) return Buffer.from(hit, 'latin1');
    try {
      const { clear, exact } = this.vol.decodeNameExact(lowerName);
      remember(this.decoded, key, clear);
      // `ls -l` looks up every name it just listed: with the lower name known to be exactly what
      // encode makes of this one, that lookup encrypts nothing.
      if (exact) remember(this.encoded, clear.toString('latin1'), lowerName);
      return clear;
    } catch (e) {
      const key = lowerName.toString('latin1');
      if (!this.hidden.has(key)) {
        if (this.hidden.size < 10000) this.hidden.add(key);
        this.log(`hiding ${this.vol.lower.root}/…/${lowerName.toString('utf8')}: ${(e as Error).message}`);
      }
      return undefined;
    }
  }

  /**
   * Clear size of a regular lower file not open: its header's size field, read as the caller.
   * Answers read with the daemon's rights are kept per lower inode while the lower file's size
   * and ctime stay the same (every write, truncate or xattr change moves ctime, also behind the
   * mount), so a lookup or getattr of an unchanged file opens nothing.
   */
  protected peekSize(n: Node, st: LowerStat, cr: Creds | undefined): number | undefined {
    // Reading needs the caller's rights only where the daemon's could read more than theirs.
    const own = cr && !(st.mode & 0o004) && !(st.uid === cr.uid && st.mode & 0o400) ? cr : undefined;
    const key = own ? undefined : this.inodeKey(st.dev, st.ino);
    const hit = key === undefined ? undefined : this.clearSizes.get(key, st.size, st.ctimeNs);
    if (hit !== undefined) return hit;
    const clear = this.readClearSize(n, own);
    if (key !== undefined && clear !== undefined) this.clearSizes.set(key, st.size, st.ctimeNs, clear);
    return clear;
  }

  protected readClearSize(n: Node, own: Creds | undefined): number | undefined {
    let fd: number;
    try {
      // O_NOATIME: a stat must not count as an access (relatime would update the lower atime
      // of a file written since it was last read, and on disk dirty its inode). Only the owner
      // (or CAP_FOWNER) may ask for it: anyone else reads as before.
      const open = (flags: number) => asCaller(own, () => openFileAt(this.dirFd(n.parent), n.name, flags, 0, n).fd);
      try {
        fd = open(C.O_RDONLY | C.O_NOATIME);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
        fd = open(C.O_RDONLY);
      }
    } catch {
      return undefined;
    }
    try {
      const b = Buffer.alloc(16);
      const got = nodefs.readSync(fd, b, 0, 16, 0);
      if (got === 16 && hasMarker(b)) return Number(b.readBigUInt64BE(0));
      let x: Buffer | undefined;
      try {
        x = sys.fgetxattr(fd, XATTR_NAME);
      } catch {
        x = undefined;
      }
      if (x && x.length >= 16 && hasMarker(x)) return Number(x.readBigUInt64BE(0));
      return undefined;
    } catch {
      return undefined;
    } finally {
      nodefs.closeSync(fd);
    }
  }

  /**
   * A size worked out from the lower inode alone (a symlink's clear target length, encrypted
   * view's size with the header a user.ecryptfs xattr becomes), kept with the clear sizes and, like
   * them, only while the lower size and ctime stay the same (an xattr change moves ctime; a
   * symlink's target never changes). On failure: the lower size, not remembered.
   */
  private derivedSize(st: LowerStat, work: () => number): number {
    const key = this.inodeKey(st.dev, st.ino);
    const hit = this.clearSizes.get(key, st.size, st.ctimeNs);
    if (hit !== undefined) return hit;
    let size: number;
    try {
      size = work();
    } catch {
      return st.size;
    }
    this.clearSizes.set(key, st.size, st.ctimeNs, size);
    return size;
  }

  /** Encrypted view: the lower size, plus the header the kernel builds from a user.ecryptfs xattr. */
  private viewSize(n: Node, st: LowerStat): number {
    try {
      sys.lgetxattr(sys.fdPath(this.dirFd(n.parent), n.name), XATTR_NAME);
      return st.size + 8192;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENODATA' || code === 'EOPNOTSUPP') return st.size;
      throw e;
    }
  }

  /** Clear size and attributes of a node from its lower stat. */
  protected attrOf(n: Node, st: LowerStat, cr: Creds | undefined): Attr {
    let size = st.size;
    if (isReg(st.mode) && n.nodeid !== ROOT) {
      const state = this.open.get(n.nodeid);
      if (this.encryptedView) size = this.derivedSize(st, () => this.viewSize(n, st));
      else if (state) size = state.file.size;
      else size = this.peekSize(n, st, cr) ?? st.size;
    } else if (isLnk(st.mode) && !this.encryptedView) {
      size = this.derivedSize(st, () => this.vol.decodeLinkTargetBytes(sys.readlinkat(this.dirFd(n.parent), n.name)).length);
    }
    return {
      ino: st.ino, size, blocks: st.blocks, atimeMs: st.atimeMs, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs,
      atimeNs: st.atimeNs, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, mode: st.mode, nlink: st.nlink, uid: st.uid, gid: st.gid, rdev: st.rdev, blksize: 4096,
    };
  }

  /** The node for a lower inode, by (dev, ino); a reused inode number of another type is a new node. */
  protected remember(parent: number, name: Buffer, st: LowerStat): Node {
    const key = this.inodeKey(st.dev, st.ino);
    const id = this.byKey.get(key);
    let n = id === undefined ? undefined : this.nodes.get(id);
    if (n && n.type !== (st.mode & S_IFMT)) n = undefined;
    if (!n) {
      n = new Node(this.nextNode++, parent, name, st.dev, st.ino, st.mode & S_IFMT);
      this.nodes.set(n.nodeid, n);
      this.byKey.set(key, n.nodeid);
    } else setName(n, parent, name);
    n.nlookup++;
    n.entryAt = performance.now();
    return n;
  }

  protected entryFor(parent: number, lowerName: Buffer, cr: Creds | undefined, st?: LowerStat): Entry {
    const s = st ?? sys.fstatat(this.dirFd(parent), lowerName);
    const n = this.remember(parent, lowerName, s);
    return { nodeid: n.nodeid, attr: this.attrOf(n, s, cr) };
  }

  async lookup(parent: number, name: string | Buffer, ctx?: Caller): Promise<Entry> {
    return this.lookupSync(parent, name, ctx);
  }

  /** lookup, answered without a promise (the FUSE server then replies in the same turn). */
  lookupSync(parent: number, name: string | Buffer, ctx?: Caller): Entry {
    const cr = callerCreds(ctx);
    const clear = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
    const enc = this.encode(clear);
    const dir = this.dirFd(parent);
    // Probes that answer with an errno: a missing name (every create asks first) builds no
    // Error with a stack and a message holding the lower name.
    const st = sys.fstatatOrErrno(dir, enc);
    if (typeof st !== 'number') return this.entryFor(parent, enc, cr, st);
    if (st !== E.ENOENT || enc.equals(clear)) throw new ErrnoError(st);
    // Plain names put straight into the lower directory are found too (as in the seed).
    const plain = sys.fstatatOrErrno(dir, clear);
    if (typeof plain === 'number') throw new ErrnoError(plain);
    return this.entryFor(parent, clear, cr, plain);
  }

  forget(nodeid: number, n: number): void {
    const node = this.nodes.get(nodeid);
    if (!node || nodeid === ROOT) return;
    node.nlookup -= n;
    if (node.nlookup <= 0 && !this.open.has(nodeid)) {
      this.nodes.delete(nodeid);
      this.dirs.drop(nodeid);
      const key = this.inodeKey(node.dev, node.ino);
      if (this.byKey.get(key) === nodeid) this.byKey.delete(key);
    }
  }

  /** How many entries each per-node and per-inode table holds (for the tests). */
  tables(): { nodes: number; inodes: number; dirFds: number; clearSizes: number; encodedNames: number; decodedNames: number; open: number; dirStreams: number } {
    return {
      nodes: this.nodes.size, inodes: this.byKey.size, dirFds: this.dirs.size, clearSizes: this.clearSizes.count,
      encodedNames: this.encoded.size, decodedNames: this.decoded.size, open: this.open.size, dirStreams: this.dirStreams.size,
    };
  }

  /** lstat of a node's own inode: checked to be the node (a swapped name is ESTALE). */
  protected statNode(n: Node): LowerStat {
    if (n.nodeid === ROOT) return sys.fstat(this.rootFd);
    if (isDir(n.type)) return sys.fstat(this.dirFd(n.nodeid));
    const st = sys.fstatat(this.dirFd(n.parent), n.name);
    if (st.dev !== n.dev || st.ino !== n.ino) throw new ErrnoError(E.ESTALE);
    return st;
  }

  async getattr(nodeid: number, ctx?: Caller): Promise<Attr> {
    return this.getattrSync(nodeid, ctx);
  }

  getattrSync(nodeid: number, ctx?: Caller): Attr {
    const n = this.node(nodeid);
    const state = this.open.get(nodeid);
    if (state) {
      // The open lower file is the node's inode, whatever happened to its name.
      return this.attrOf(n, state.fh.lstat(), undefined);
    }
    return this.attrOf(n, this.statNode(n), callerCreds(ctx));
  }

  /**
   * Run `fn` on a descriptor of the node's own inode (O_PATH, no-follow, checked, and for a
   * non-directory its fstat, taken before `fn`), as the caller:
   * chmod/chown/utimes act on exactly that inode, never on what a name points to now.
   */
  protected onNode<T>(n: Node, cr: Creds | undefined, fn: (fd: number, st?: LowerStat) => T): T {
    return asCaller(cr, () => {
      if (n.nodeid === ROOT) return fn(this.rootFd);
      if (isDir(n.type)) return fn(this.dirFd(n.nodeid));
      const fd = sys.openat(this.dirFd(n.parent), n.name, sys.O_PATH | C.O_NOFOLLOW | sys.O_CLOEXEC);
      try {
        const st = sys.fstat(fd);
        if (st.dev !== n.dev || st.ino !== n.ino) throw new ErrnoError(E.ESTALE);
        return fn(fd, st);
      } finally {
        nodefs.closeSync(fd);
      }
    });
  }

  protected stopper(ctx: Caller | undefined): () => boolean {
    let checked = Date.now();
    let gone = false;
    return () => {
      if (this.stopping || ctx?.interrupted) return true;
      if (ctx && ctx.pid > 0 && !gone && Date.now() - checked > 200) {
        checked = Date.now();
        gone = !nodefs.existsSync(`/proc/${ctx.pid}`);
      }
      return gone;
    };
  }

  async readlink(nodeid: number, ctx?: Caller): Promise<Buffer> {
    const n = this.node(nodeid);
    const t = asCaller(callerCreds(ctx), () => sys.readlinkat(this.dirFd(n.parent), n.name));
    if (this.encryptedView) return t;
    try {
      return this.vol.decodeLinkTargetBytes(t);
    } catch (e) {
      throw new ErrnoError(toErrno(e));
    }
  }

  protected charge(uid: number, n: number): void {
    if (uid === 0) return;
    const have = this.fdsByUid.get(uid) ?? 0;
    if (n > 0 && have + n > this.perUserFds) throw new ErrnoError(E.EMFILE, `uid ${uid} holds ${have} lower descriptors (limit ${this.perUserFds})`);
    if (have + n <= 0) this.fdsByUid.delete(uid);
    else this.fdsByUid.set(uid, have + n);
  }

  async statfs(): Promise<{ blocks: number; bfree: number; bavail: number; files: number; ffree: number; bsize: number; namelen: number; frsize: number }> {
    const s = nodefs.statfsSync(sys.fdPath(this.rootFd));
    return { blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, bsize: s.bsize, frsize: s.bsize, namelen: this.vol.nameMax };
  }
}
