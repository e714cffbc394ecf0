/**
 * The eCryptfs filesystem as a FUSE server sees it: inode-based operations over a Volume,
 * returning plain attribute objects and throwing errno errors. No FUSE encoding here (see
 * serve.ts), so this is testable without a mount.
 *
 * Behaviour follows the kernel module: regular files are eCryptfs files (one shared lower file
 * per inode, as the kernel keeps since LP #870326); names and symlink targets are encrypted when
 * the volume has an FNEK; a lower file that is not eCryptfs lists but fails to open with EIO
 * unless passthrough; the ecryptfs header xattr is hidden; statfs reports the encrypted name limit.
 *
 * Safety as root on a directory users control (issue #12; README "Security"): nothing is resolved
 * by a path string. Each node holds its parent and lower name (bytes) and its (dev, ino); every
 * lower call is relative to a directory descriptor (src/lower/at.ts), never follows the last
 * component, and checks that what it opened is the node's inode and type. Calls that create,
 * change or read on behalf of a user run with that user's fsuid/fsgid/groups (src/lower/creds.ts),
 * so the lower filesystem checks permissions and new files get their owner and group from it.
 */
import * as nodefs from 'node:fs';
import { constants as C } from 'node:fs';
import { constants as OSC } from 'node:os';
import { isEcryptfsError } from '../errors.js';
import { buildHeaderRegion, FLAG_METADATA_IN_XATTR, hasMarker, parseHeader } from '../format/header.js';
import { DirStream, FdLowerFile, FdLru, isDir, isLnk, isReg, openDirAt, openDirStream, openFileAt, S_IFMT, type LowerStat } from '../lower/at.js';
import { asCaller, callerCreds, withUmask, type Creds } from '../lower/creds.js';
import * as sys from '../lower/sys.js';
import { EcryptfsFile, XATTR_NAME } from '../volume/file.js';
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
  /** Exact times in nanoseconds (what FUSE replies; the *Ms fields are for tests and tools). */
  atimeNs?: bigint;
  mtimeNs?: bigint;
  ctimeNs?: bigint;
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

/** Who asks: a FUSE request's caller (uid 0 or absent: the daemon's own credentials). */
export interface Caller {
  uid: number;
  gid: number;
  pid: number;
  /** Set by the FUSE server when the kernel interrupts the request. */
  interrupted?: boolean;
  /** The caller's umask when the kernel leaves applying it to us (FUSE_DONT_MASK). */
  umask?: number;
}

interface Node {
  nodeid: number;
  parent: number;
  /** Lower name (bytes) in the parent directory. */
  name: Buffer;
  nlookup: number;
  dev: number;
  ino: number;
  /** S_IFMT bits. */
  type: number;
  /**
   * security.capability of the lower inode: null when known absent, undefined when not yet read.
   * The kernel asks for it before every write (to drop file capabilities), so it is read once.
   */
  cap?: Buffer | null;
  /** Other names of a hard-linked inode seen so far (at most 8): one takes over when `name` goes. */
  links?: Array<{ parent: number; name: Buffer }>;
}

const sameName = (l: { parent: number; name: Buffer }, parent: number, name: Buffer) => l.parent === parent && l.name.equals(name);

/** `parent`/`name` is no longer a name of `n`: another known name takes over if it was the main one. */
function dropName(n: Node, parent: number, name: Buffer): void {
  if (sameName(n, parent, name)) {
    const next = n.links?.pop();
    if (next) {
      n.parent = next.parent;
      n.name = next.name;
    }
  } else if (n.links) n.links = n.links.filter((l) => !sameName(l, parent, name));
}

/** `parent`/`name` is now the main name of `n`; the previous one stays known for hard links. */
function setName(n: Node, parent: number, name: Buffer): void {
  if (sameName(n, parent, name)) return;
  if (!isDir(n.type)) {
    const links = (n.links ?? []).filter((l) => !sameName(l, parent, name));
    links.push({ parent: n.parent, name: n.name });
    n.links = links.slice(-8);
  }
  n.parent = parent;
  n.name = ownCopy(name);
}

/** The name `fromParent`/`fromName` of `n` became `toParent`/`toName` (rename). */
function moveName(n: Node, fromParent: number, fromName: Buffer, toParent: number, toName: Buffer): void {
  if (sameName(n, fromParent, fromName)) {
    n.parent = toParent;
    n.name = ownCopy(toName);
    if (n.links) n.links = n.links.filter((l) => !sameName(l, toParent, toName));
  } else {
    if (n.links) n.links = n.links.filter((l) => !sameName(l, fromParent, fromName));
    setName(n, toParent, toName);
  }
}

interface OpenState {
  file: EcryptfsFile;
  fh: FdLowerFile;
  refs: number;
  writable: boolean;
  /** The uid whose quota of lower descriptors this open counts against. */
  uid: number;
}

export interface FsOptions {
  readOnly?: boolean;
  encryptedView?: boolean;
  /** Called for things an admin should know (undecodable names, bad headers); never secrets. */
  log?: (msg: string) => void;
  /** Transfers up to this size use synchronous syscalls (see NodeLowerFsOptions). */
  syncIoMax?: number;
  /** Lower descriptors (open files and directory streams) one non-root user may hold. */
  perUserFds?: number;
  /** Directory descriptors kept open for lookups (LRU). */
  dirCache?: number;
}

/** Names remembered in each direction (a few hundred bytes each). */
const NAME_CACHE = 32_768;

/**
 * Kept as latin1 strings, not Buffers: a small Buffer is a slice of an 8 KiB pool slab and keeps
 * the whole slab alive (measured: 20,000 files held 40 MB of mostly dead slabs).
 */
function remember(m: Map<string, string>, key: string, value: Buffer): void {
  if (m.size >= NAME_CACHE) m.clear();
  m.set(key, value.toString('latin1'));
}

/** A name copy of its own (not a pool slice, see remember()), for names kept per node. */
function ownCopy(b: Buffer): Buffer {
  const c = Buffer.allocUnsafeSlow(b.length);
  b.copy(c);
  return c;
}

/** Lower inodes whose clear size is remembered (about 100 bytes each). */
const CLEAR_SIZE_CACHE = 100_000;
export const ROOT = 1;

const CAP_XATTR = 'security.capability';
const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFSOCK = 0o140000;

/**
 * The largest file the lower filesystem holds (the kernel's s_maxbytes), from statfs' f_type:
 * ext2/3/4 address 2^32 blocks per file; other Linux filesystems use MAX_LFS_FILESIZE (2^63-1),
 * which is past what a JS number holds exactly, so 2^53-1 bounds those.
 */
export function lowerMaxBytes(s: { type: number; bsize: number }): number {
  switch (s.type) {
    case 0xef53: return Math.min(Number.MAX_SAFE_INTEGER, (2 ** 32 - 1) * s.bsize);
    case 0x4d44: return 0xffffffff; // vfat
    default: return Number.MAX_SAFE_INTEGER;
  }
}

function fdLimit(): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(nodefs.readFileSync('/proc/self/limits', 'latin1'));
    if (m) return Number(m[1]);
  } catch {
    // not Linux
  }
  return 1024;
}

export class EcryptfsFs {
  private readonly nodes = new Map<number, Node>();
  /**
   * Name translations both ways (pure functions of the name and the key, so never stale): each
   * costs a cipher set-up and a hash, and `ls -l` or a lookup asks for the same names again.
   */
  private readonly encoded = new Map<string, string>();
  private readonly decoded = new Map<string, string>();
  /** Clear sizes by lower inode (see peekSize). */
  private readonly clearSizes = new Map<string, { size: number; ctimeNs: bigint; clear: number }>();
  private readonly byKey = new Map<string, number>();
  private readonly open = new Map<number, OpenState>();
  private readonly handles = new Map<number, { nodeid: number; append: boolean }>();
  private readonly dirStreams = new Map<number, { stream: DirStream; nodeid: number; uid: number }>();
  private readonly fdsByUid = new Map<number, number>();
  private readonly dirs: FdLru<number>;
  private readonly rootFd: number;
  private readonly hidden = new Set<string>();
  private nextDirHandle = 1;
  private nextNode = 2;
  private nextHandle = 1;
  readonly readOnly: boolean;
  readonly encryptedView: boolean;
  /** Largest clear size the lower filesystem can hold (EFBIG past it). */
  readonly maxSize: number;
  private readonly log: (m: string) => void;
  private readonly syncIoMax: number;
  private readonly perUserFds: number;
  /** Set when the daemon is stopping: long operations end at their next chunk. */
  stopping = false;

  constructor(readonly vol: Volume, opts: FsOptions = {}) {
    this.encryptedView = !!opts.encryptedView;
    this.readOnly = !!opts.readOnly || this.encryptedView;
    this.log = opts.log ?? (() => undefined);
    this.syncIoMax = opts.syncIoMax ?? 4 << 20;
    const limit = fdLimit();
    this.perUserFds = opts.perUserFds ?? Math.max(64, Math.floor(limit / 4));
    this.dirs = new FdLru(opts.dirCache ?? Math.max(16, Math.min(1024, Math.floor(limit / 16))));
    this.rootFd = nodefs.openSync(vol.lower.root, sys.O_PATH | C.O_DIRECTORY | C.O_NOFOLLOW);
    const st = sys.fstat(this.rootFd);
    this.nodes.set(ROOT, { nodeid: ROOT, parent: ROOT, name: Buffer.alloc(0), nlookup: 1, dev: st.dev, ino: st.ino, type: st.mode & S_IFMT });
    const sfs = nodefs.statfsSync(sys.fdPath(this.rootFd));
    // The clear size whose lower file (8 KiB header + whole extents) still fits.
    this.maxSize = Math.max(0, Math.floor((lowerMaxBytes(sfs) - 8192) / 4096) * 4096);
  }

  private node(nodeid: number): Node {
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

  private label(parent: number, name: Buffer): string {
    const p = this.lowerPathOf(parent);
    return `${this.vol.lower.root}/${p === '' ? '' : `${p}/`}${name.toString('utf8')}`;
  }

  /**
   * The directory descriptor of a directory node: from the LRU, else opened from its parent's
   * (recursively up to the root), no-follow and checked to be the node's inode. Use at once.
   */
  private dirFd(nodeid: number): number {
    if (nodeid === ROOT) return this.rootFd;
    const cached = this.dirs.get(nodeid);
    if (cached !== undefined) return cached;
    const n = this.node(nodeid);
    if (!isDir(n.type)) throw new ErrnoError(E.ENOTDIR);
    const fd = openDirAt(this.dirFd(n.parent), n.name, n);
    this.dirs.put(nodeid, fd);
    return fd;
  }

  private writable(): void {
    if (this.readOnly) throw new ErrnoError(E.EROFS);
  }

  private encode(name: string | Buffer): Buffer {
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

  private decode(lowerName: Buffer): Buffer | undefined {
    if (this.encryptedView) return lowerName;
    const key = lowerName.toString('latin1');
    const hit = this.decoded.get(key);
    if (hit !== undefined) return Buffer.from(hit, 'latin1');
    try {
      const clear = this.vol.decodeNameBytes(lowerName);
      remember(this.decoded, key, clear);
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
  private peekSize(n: Node, st: LowerStat, cr: Creds | undefined): number | undefined {
    // Reading needs the caller's rights only where the daemon's could read more than theirs.
    const own = cr && !(st.mode & 0o004) && !(st.uid === cr.uid && st.mode & 0o400) ? cr : undefined;
    const key = own ? undefined : `${st.dev}:${st.ino}`;
    const hit = key === undefined ? undefined : this.clearSizes.get(key);
    if (hit && hit.size === st.size && hit.ctimeNs === st.ctimeNs) return hit.clear;
    const clear = this.readClearSize(n, own);
    if (key !== undefined && clear !== undefined) {
      if (this.clearSizes.size >= CLEAR_SIZE_CACHE) this.clearSizes.clear();
      this.clearSizes.set(key, { size: st.size, ctimeNs: st.ctimeNs, clear });
    }
    return clear;
  }

  private readClearSize(n: Node, own: Creds | undefined): number | undefined {
    let fd: number;
    try {
      fd = asCaller(own, () => openFileAt(this.dirFd(n.parent), n.name, C.O_RDONLY, 0, n).fd);
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

  /** Clear size and attributes of a node from its lower stat. */
  private attrOf(n: Node, st: LowerStat, cr: Creds | undefined): Attr {
    let size = st.size;
    if (isReg(st.mode) && n.nodeid !== ROOT) {
      const state = this.open.get(n.nodeid);
      if (this.encryptedView) {
        let x: Buffer | undefined;
        try {
          x = sys.lgetxattr(sys.fdPath(this.dirFd(n.parent), n.name), XATTR_NAME);
        } catch {
          x = undefined;
        }
        size = st.size + (x ? 8192 : 0);
      } else if (state) size = state.file.size;
      else size = this.peekSize(n, st, cr) ?? st.size;
    } else if (isLnk(st.mode) && !this.encryptedView) {
      try {
        size = this.vol.decodeLinkTargetBytes(sys.readlinkat(this.dirFd(n.parent), n.name)).length;
      } catch {
        // keep the lower size
      }
    }
    return {
      ino: st.ino, size, blocks: st.blocks, atimeMs: st.atimeMs, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs,
      atimeNs: st.atimeNs, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, mode: st.mode, nlink: st.nlink, uid: st.uid, gid: st.gid, rdev: st.rdev, blksize: 4096,
    };
  }

  /** The node for a lower inode, by (dev, ino); a reused inode number of another type is a new node. */
  private remember(parent: number, name: Buffer, st: LowerStat): Node {
    const key = `${st.dev}:${st.ino}`;
    const id = this.byKey.get(key);
    let n = id === undefined ? undefined : this.nodes.get(id);
    if (n && n.type !== (st.mode & S_IFMT)) n = undefined;
    if (!n) {
      n = { nodeid: this.nextNode++, parent, name: ownCopy(name), nlookup: 0, dev: st.dev, ino: st.ino, type: st.mode & S_IFMT };
      this.nodes.set(n.nodeid, n);
      this.byKey.set(key, n.nodeid);
    } else setName(n, parent, name);
    n.nlookup++;
    return n;
  }

  /** The known node of the entry `name` in directory `parent`, if any. */
  private nodeAt(parent: number, name: Buffer): Node | undefined {
    try {
      const st = sys.fstatat(this.dirFd(parent), name);
      const id = this.byKey.get(`${st.dev}:${st.ino}`);
      return id === undefined ? undefined : this.nodes.get(id);
    } catch {
      return undefined;
    }
  }

  private entryFor(parent: number, lowerName: Buffer, cr: Creds | undefined, st?: LowerStat): Entry {
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
    try {
      return this.entryFor(parent, enc, cr);
    } catch (e) {
      // Plain names put straight into the lower directory are found too (as in the seed).
      if (!enc.equals(clear) && (e as NodeJS.ErrnoException).code === 'ENOENT') return this.entryFor(parent, clear, cr);
      throw e;
    }
  }

  forget(nodeid: number, n: number): void {
    const node = this.nodes.get(nodeid);
    if (!node || nodeid === ROOT) return;
    node.nlookup -= n;
    if (node.nlookup <= 0 && !this.open.has(nodeid)) {
      this.nodes.delete(nodeid);
      this.dirs.drop(nodeid);
      const key = `${node.dev}:${node.ino}`;
      if (this.byKey.get(key) === nodeid) this.byKey.delete(key);
    }
  }

  /** lstat of a node's own inode: checked to be the node (a swapped name is ESTALE). */
  private statNode(n: Node): LowerStat {
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
   * Run `fn` on a descriptor of the node's own inode (O_PATH, no-follow, checked), as the caller:
   * chmod/chown/utimes act on exactly that inode, never on what a name points to now.
   */
  private onNode<T>(n: Node, cr: Creds | undefined, fn: (fd: number) => T): T {
    return asCaller(cr, () => {
      if (n.nodeid === ROOT) return fn(this.rootFd);
      if (isDir(n.type)) return fn(this.dirFd(n.nodeid));
      const fd = sys.openat(this.dirFd(n.parent), n.name, sys.O_PATH | C.O_NOFOLLOW | 0o2000000);
      try {
        const st = sys.fstat(fd);
        if (st.dev !== n.dev || st.ino !== n.ino) throw new ErrnoError(E.ESTALE);
        return fn(fd);
      } finally {
        nodefs.closeSync(fd);
      }
    });
  }

  private stopper(ctx: Caller | undefined): () => boolean {
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

  async setattr(
    nodeid: number,
    a: {
      mode?: number; uid?: number; gid?: number; size?: number; fh?: number;
      atimeMs?: number | 'now'; mtimeMs?: number | 'now';
      /** Exact times; taken over the *Ms fields when given. */
      atimeNs?: bigint | 'now'; mtimeNs?: bigint | 'now';
    },
    ctx?: Caller,
  ): Promise<Attr> {
    this.writable();
    const n = this.node(nodeid);
    const cr = callerCreds(ctx);
    if (a.size !== undefined) {
      if (isDir(n.type)) throw new ErrnoError(E.EISDIR);
      if (a.size > this.maxSize) throw new ErrnoError(E.EFBIG);
      await this.withFile(nodeid, true, cr, (f) => f.truncate(a.size!, this.vol.keys, this.vol.newFileParams(), this.stopper(ctx)));
    }
    if (a.mode !== undefined) {
      const mode = a.mode & 0o7777;
      this.onNode(n, cr, (fd) => nodefs.chmodSync(sys.fdPath(fd), mode));
    }
    if (a.uid !== undefined || a.gid !== undefined) {
      this.onNode(n, cr, (fd) => sys.fchownat(fd, '', a.uid ?? -1, a.gid ?? -1, sys.AT_EMPTY_PATH));
    }
    if (a.atimeMs !== undefined || a.mtimeMs !== undefined || a.atimeNs !== undefined || a.mtimeNs !== undefined) {
      const ns = (t: number | 'now' | undefined) => (t === undefined || t === 'now' ? t : BigInt(Math.round(t * 1e6)));
      const at = a.atimeNs ?? ns(a.atimeMs);
      const mt = a.mtimeNs ?? ns(a.mtimeMs);
      this.onNode(n, cr, (fd) => sys.utimensat(sys.AT_FDCWD, sys.fdPath(fd), at, mt, 0));
    }
    return this.getattr(nodeid, ctx);
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

  async mkdir(parent: number, name: string | Buffer, mode: number, ctx?: Caller): Promise<Entry> {
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

  /** Lower name of an existing child: encrypted form, else a plain lower name. */
  private existingChild(parent: number, name: string | Buffer): Buffer {
    const clear = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
    const enc = this.encode(clear);
    if (enc.equals(clear)) return enc;
    const exists = (b: Buffer) => {
      try {
        sys.fstatat(this.dirFd(parent), b);
        return true;
      } catch {
        return false;
      }
    };
    if (exists(enc)) return enc;
    return exists(clear) ? clear : enc;
  }

  async unlink(parent: number, name: string | Buffer, ctx?: Caller): Promise<void> {
    this.writable();
    const lowerName = this.existingChild(parent, name);
    const n = this.nodeAt(parent, lowerName);
    asCaller(callerCreds(ctx), () => sys.unlinkat(this.dirFd(parent), lowerName, 0));
    if (n) dropName(n, parent, lowerName);
  }

  async rmdir(parent: number, name: string | Buffer, ctx?: Caller): Promise<void> {
    this.writable();
    const lowerName = this.existingChild(parent, name);
    asCaller(callerCreds(ctx), () => sys.unlinkat(this.dirFd(parent), lowerName, sys.AT_REMOVEDIR));
  }

  async rename(parent: number, name: string | Buffer, newParent: number, newName: string | Buffer, flags = 0, ctx?: Caller): Promise<void> {
    this.writable();
    if (flags & ~(sys.RENAME_NOREPLACE | sys.RENAME_EXCHANGE)) throw new ErrnoError(E.EINVAL);
    const from = this.existingChild(parent, name);
    const to = flags & sys.RENAME_EXCHANGE ? this.existingChild(newParent, newName) : this.encode(newName);
    const a = this.nodeAt(parent, from);
    // With EXCHANGE the entry at `to` moves to `from`; without, it is replaced (that name is gone).
    const b = this.nodeAt(newParent, to);
    asCaller(callerCreds(ctx), () => sys.renameat2(this.dirFd(parent), from, this.dirFd(newParent), to, flags));
    if (b && b !== a) {
      if (flags & sys.RENAME_EXCHANGE) moveName(b, newParent, to, parent, from);
      else dropName(b, newParent, to);
    }
    if (a) moveName(a, parent, from, newParent, to);
  }

  // ---- directories: streamed from the lower directory, no snapshot ----

  private charge(uid: number, n: number): void {
    if (uid === 0) return;
    const have = this.fdsByUid.get(uid) ?? 0;
    if (n > 0 && have + n > this.perUserFds) throw new ErrnoError(E.EMFILE, `uid ${uid} holds ${have} lower descriptors (limit ${this.perUserFds})`);
    if (have + n <= 0) this.fdsByUid.delete(uid);
    else this.fdsByUid.set(uid, have + n);
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
  readdirAt(fh: number, offset: number, max = 256): Array<{ name: Buffer; ino: number; mode: number; offset: number }> {
    const d = this.dirStreams.get(fh);
    if (!d) throw new ErrnoError(E.EBADF);
    const out: Array<{ name: Buffer; ino: number; mode: number; offset: number }> = [];
    let at = offset;
    while (out.length === 0) {
      const got = d.stream.read(at, max);
      if (got.length === 0) break;
      for (const { d: ent, next } of got) {
        at = next;
        const dot = ent.name.length <= 2 && (ent.name.equals(Buffer.from('.')) || ent.name.equals(Buffer.from('..')));
        const name = dot ? ent.name : this.decode(ent.name);
        if (name === undefined) continue;
        out.push({ name, ino: ent.ino, mode: ent.type << 12, offset: next });
      }
    }
    return out;
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
          out.push({ name: s, ino: e.ino, type: t === 0o100000 ? 'file' : t === 0o040000 ? 'dir' : t === 0o120000 ? 'symlink' : 'other' });
        }
      }
    } finally {
      this.releasedir(fh);
    }
    return out;
  }

  async statfs(): Promise<{ blocks: number; bfree: number; bavail: number; files: number; ffree: number; bsize: number; namelen: number; frsize: number }> {
    const s = nodefs.statfsSync(sys.fdPath(this.rootFd));
    return { blocks: s.blocks, bfree: s.bfree, bavail: s.bavail, files: s.files, ffree: s.ffree, bsize: s.bsize, frsize: s.bsize, namelen: this.vol.nameMax };
  }

  // ---- open files: one lower descriptor per inode ----

  private async acquire(nodeid: number, write: boolean, cr: Creds | undefined): Promise<OpenState> {
    let s = this.open.get(nodeid);
    if (s && write && !s.writable) {
      // Reopen read-write (the shared lower file must serve every handle).
      const { file, fh } = await this.openLower(nodeid, true, cr);
      // New requests take the new file at once; the old one closes after its reads in progress.
      const old = s.file;
      s.file = file;
      s.fh = fh;
      s.writable = true;
      await old.close();
    }
    if (!s) {
      const uid = cr?.uid ?? 0;
      this.charge(uid, 1);
      try {
        let writable = !this.readOnly;
        let o: { file: EcryptfsFile; fh: FdLowerFile };
        try {
          o = await this.openLower(nodeid, writable, cr);
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (write || (code !== 'EACCES' && code !== 'EROFS' && code !== 'EPERM')) throw e;
          writable = false;
          o = await this.openLower(nodeid, false, cr);
        }
        s = { file: o.file, fh: o.fh, refs: 0, writable, uid };
        this.open.set(nodeid, s);
      } catch (e) {
        this.charge(uid, -1);
        throw e;
      }
    }
    s.refs++;
    return s;
  }

  private async openLower(nodeid: number, write: boolean, cr: Creds | undefined): Promise<{ file: EcryptfsFile; fh: FdLowerFile }> {
    const n = this.node(nodeid);
    const label = this.label(n.parent, n.name);
    const { fd } = asCaller(cr, () => openFileAt(this.dirFd(n.parent), n.name, write ? C.O_RDWR : C.O_RDONLY, 0, n));
    const fh = new FdLowerFile(fd, this.syncIoMax, label);
    try {
      return { file: await EcryptfsFile.openHandle(fh, this.vol.keys, { writable: write, passthrough: this.vol.passthrough || this.encryptedView, xattrMetadata: true }), fh };
    } catch (e) {
      if (isEcryptfsError(e)) {
        this.log(`${label}: ${e.message}`);
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
      this.charge(s.uid, -1);
      await s.file.close();
      const n = this.nodes.get(nodeid);
      if (n && n.nlookup <= 0) this.forget(nodeid, 0);
    }
  }

  private async withFile<T>(nodeid: number, write: boolean, cr: Creds | undefined, fn: (f: EcryptfsFile) => Promise<T>): Promise<T> {
    const s = await this.acquire(nodeid, write, cr);
    try {
      return await fn(s.file);
    } finally {
      await this.release0(nodeid);
    }
  }

  /** Open: returns a handle. flags are open(2) flags. */
  async openFile(nodeid: number, flags: number, ctx?: Caller): Promise<number> {
    const acc = flags & 3;
    const write = acc === C.O_WRONLY || acc === C.O_RDWR;
    if (write) this.writable();
    const s = await this.acquire(nodeid, write, callerCreds(ctx));
    try {
      if (write && flags & C.O_TRUNC) await s.file.truncate(0, this.vol.keys, this.vol.newFileParams());
    } catch (e) {
      await this.release0(nodeid);
      throw e;
    }
    const fh = this.nextHandle++;
    this.handles.set(fh, { nodeid, append: !!(flags & C.O_APPEND) });
    return fh;
  }

  async create(parent: number, name: string | Buffer, mode: number, flags: number, ctx?: Caller): Promise<{ entry: Entry; fh: number }> {
    this.writable();
    const lowerName = this.encode(name);
    const cr = callerCreds(ctx);
    const uid = cr?.uid ?? 0;
    let fd: number;
    let st: LowerStat;
    try {
      ({ fd, st } = asCaller(cr, () => withUmask(ctx?.umask, () => openFileAt(this.dirFd(parent), lowerName, C.O_RDWR | C.O_CREAT | C.O_EXCL, mode & 0o7777))));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && !(flags & C.O_EXCL)) {
        const entry = await this.lookup(parent, name, ctx);
        return { entry, fh: await this.openFile(entry.nodeid, flags, ctx) };
      }
      throw e;
    }
    const fh = new FdLowerFile(fd, this.syncIoMax, this.label(parent, lowerName));
    let file: EcryptfsFile;
    try {
      this.charge(uid, 1);
    } catch (e) {
      await fh.close();
      this.removeIfSame(parent, lowerName, st, cr);
      throw e;
    }
    try {
      file = await EcryptfsFile.createHandle(fh, this.vol.keys, this.vol.newFileParams());
    } catch (e) {
      this.charge(uid, -1);
      this.removeIfSame(parent, lowerName, st, cr);
      throw e;
    }
    const entry = this.entryFor(parent, lowerName, cr, st);
    const old = this.open.get(entry.nodeid);
    if (old) {
      this.charge(old.uid, -1);
      await old.file.close();
    }
    this.open.set(entry.nodeid, { file, fh, refs: 1, writable: true, uid });
    entry.attr.size = 0;
    const h = this.nextHandle++;
    this.handles.set(h, { nodeid: entry.nodeid, append: !!(flags & C.O_APPEND) });
    return { entry, fh: h };
  }

  /** Undo a create that failed after the lower file was made, if the name is still that file. */
  private removeIfSame(parent: number, name: Buffer, st: LowerStat, cr: Creds | undefined): void {
    try {
      asCaller(cr, () => {
        const now = sys.fstatat(this.dirFd(parent), name);
        if (now.dev === st.dev && now.ino === st.ino) sys.unlinkat(this.dirFd(parent), name, 0);
      });
    } catch {
      // gone already
    }
  }

  private handle(fh: number): { nodeid: number; append: boolean; state: OpenState } {
    const h = this.handles.get(fh);
    const state = h && this.open.get(h.nodeid);
    if (!h || !state) throw new ErrnoError(E.EBADF);
    return { ...h, state };
  }

  async read(fh: number, offset: number, size: number): Promise<Buffer> {
    const { state } = this.handle(fh);
    if (this.encryptedView) return this.readEncryptedView(state, offset, size);
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
  private async readEncryptedView(state: OpenState, offset: number, size: number): Promise<Buffer> {
    const x = await state.fh.getxattr(XATTR_NAME).catch(() => undefined);
    const head = x ? headerFromXattr(x) : Buffer.alloc(0);
    const total = head.length + state.fh.lstat().size;
    const end = Math.min(total, offset + size);
    if (offset >= end) return Buffer.alloc(0);
    const out = Buffer.alloc(end - offset);
    let o = 0;
    if (offset < head.length) o = head.copy(out, 0, offset, Math.min(head.length, end));
    const lowerStart = Math.max(0, offset - head.length);
    if (o < out.length) await state.fh.read(out, o, out.length - o, lowerStart);
    return out;
  }

  async write(fh: number, offset: number, data: Buffer, ctx?: Caller): Promise<number> {
    this.writable();
    const { state, append } = this.handle(fh);
    if (!state.writable) throw new ErrnoError(E.EBADF);
    const pos = append ? state.file.size : offset;
    if (pos + data.length > this.maxSize) throw new ErrnoError(E.EFBIG);
    try {
      return await state.file.write(pos, data, this.vol.keys, this.vol.newFileParams(), false, this.stopper(ctx));
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

  /** Run an xattr call on the node's own lower entry, as the caller. */
  private xattrOn<T>(n: Node, cr: Creds | undefined, byPath: (p: Buffer) => T): T {
    return asCaller(cr, () => {
      // A directory by its own descriptor (following the /proc link lands on exactly it); any other
      // entry by name in its directory, not followed (l* calls).
      if (n.nodeid === ROOT || isDir(n.type)) return byPath(sys.fdPath(n.nodeid === ROOT ? this.rootFd : this.dirFd(n.nodeid)));
      return byPath(sys.fdPath(this.dirFd(n.parent), n.name));
    });
  }

  /** trusted.* is only for root callers (the daemon's CAP_SYS_ADMIN must not show it to users). */
  private static hiddenName(name: string, ctx: Caller | undefined): boolean {
    return name.startsWith('trusted.') && (ctx?.uid ?? 0) !== 0;
  }

  async getxattr(nodeid: number, name: string, ctx?: Caller): Promise<Buffer> {
    return this.getxattrSync(nodeid, name, ctx);
  }

  getxattrSync(nodeid: number, name: string, ctx?: Caller): Buffer {
    if (name === XATTR_NAME && !this.encryptedView) throw new ErrnoError(E.ENODATA);
    if (EcryptfsFs.hiddenName(name, ctx)) throw new ErrnoError(E.ENODATA);
    const n = this.node(nodeid);
    const dir = isDir(n.type) || nodeid === ROOT;
    const get = () => this.xattrOn(n, callerCreds(ctx), (p) => (dir ? sys.getxattr(p, name) : sys.lgetxattr(p, name)));
    if (name !== CAP_XATTR) return get();
    // Asked before every write: answered from the node once known (set/remove through the mount
    // keep it current; a change made in the lower directory behind the mount is not seen).
    if (n.cap === undefined) {
      try {
        n.cap = get();
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENODATA') throw e;
        n.cap = null;
      }
    }
    if (n.cap === null) throw new ErrnoError(E.ENODATA);
    return n.cap;
  }

  async setxattr(nodeid: number, name: string, value: Buffer, flags: number, ctx?: Caller): Promise<void> {
    this.writable();
    if (name === XATTR_NAME) throw new ErrnoError(E.EPERM);
    if (EcryptfsFs.hiddenName(name, ctx)) throw new ErrnoError(E.EPERM);
    // File capabilities are root's to set (the kernel checked CAP_SETFCAP; the daemon keeps it true).
    if (name === CAP_XATTR && (ctx?.uid ?? 0) !== 0) throw new ErrnoError(E.EPERM);
    const n = this.node(nodeid);
    const dir = isDir(n.type) || nodeid === ROOT;
    n.cap = undefined;
    this.xattrOn(n, callerCreds(ctx), (p) => (dir ? sys.setxattr(p, name, value, flags) : sys.lsetxattr(p, name, value, flags)));
  }

  async listxattr(nodeid: number, ctx?: Caller): Promise<string[]> {
    return this.listxattrSync(nodeid, ctx);
  }

  listxattrSync(nodeid: number, ctx?: Caller): string[] {
    const n = this.node(nodeid);
    const dir = isDir(n.type) || nodeid === ROOT;
    const names = this.xattrOn(n, callerCreds(ctx), (p) => (dir ? sys.listxattr(p) : sys.llistxattr(p)));
    return names.filter((x) => x !== XATTR_NAME && !EcryptfsFs.hiddenName(x, ctx));
  }

  async removexattr(nodeid: number, name: string, ctx?: Caller): Promise<void> {
    this.writable();
    if (name === XATTR_NAME) throw new ErrnoError(E.EPERM);
    if (EcryptfsFs.hiddenName(name, ctx)) throw new ErrnoError(E.EPERM);
    const n = this.node(nodeid);
    const dir = isDir(n.type) || nodeid === ROOT;
    n.cap = undefined;
    this.xattrOn(n, callerCreds(ctx), (p) => (dir ? sys.removexattr(p, name) : sys.lremovexattr(p, name)));
  }

  /** Close every open file and lower descriptor (unmount). */
  async closeAll(): Promise<void> {
    for (const s of this.open.values()) await s.file.close().catch(() => undefined);
    this.open.clear();
    this.handles.clear();
    for (const d of this.dirStreams.values()) d.stream.close();
    this.dirStreams.clear();
    this.fdsByUid.clear();
    this.dirs.clear();
  }
}

/** The in-file header the kernel synthesises from a user.ecryptfs xattr for encrypted view. */
export function headerFromXattr(x: Buffer): Buffer {
  const h = parseHeader(x, 'xattr');
  return buildHeaderRegion({ size: h.size, flags: h.flags & ~FLAG_METADATA_IN_XATTR, keys: h.keys }, x.subarray(8, 12));
}
