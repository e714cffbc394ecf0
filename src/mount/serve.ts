/**
 * Serve an EcryptfsFs through FUSE: the adapter from the generic FUSE operations (src/fuse) to
 * the eCryptfs filesystem layer, and the mount (root: mount(8) with our /dev/fuse descriptor;
 * ordinary users: the descriptor fusermount3 handed over as FUSE_FD), with the watchdog that
 * clears the mount if the daemon dies.
 */
import { constants as OSC } from 'node:os';
import { FuseErrno } from '../fuse/errno.js';
import { mountFuse } from '../fuse/mount.js';
import { mapMaybe, type DirEntry, type Entry as FuseEntry, type FuseOperations } from '../fuse/operations.js';
import { S_IFMT, S_IFREG } from '../lower/mode.js';
import type { EcryptfsFs, Entry } from './fs.js';
import type { ListedEntry } from './fs/dir-ops.js';

export interface ServeOptions {
  source: string;
  mountpoint: string;
  readOnly: boolean;
  generic: string[];
  log: (msg: string) => void;
}

export interface Served {
  unmounted: Promise<void>;
  unmount(): Promise<void>;
}

const O_WRONLY_CREAT_EXCL = 0o1 | 0o100 | 0o200;

const entry = (e: Entry): FuseEntry => ({ ino: e.nodeid, attr: e.attr });

/** Bytes of a READDIRPLUS entry with a short name (fuse_entry_out 128 + dirent 24 + name): how many to read per request. */
const PLUS_ENTRY_BYTES = 160;

function mapEntries(list: ListedEntry[]): DirEntry[] {
  return list.map((e) => {
    const look = e.lookup;
    const d: DirEntry = { name: e.name, ino: e.ino, mode: e.mode, offset: e.offset };
    if (look) d.lookup = () => {
      const r = look();
      return r && entry(r);
    };
    return d;
  });
}

/**
 * The answer of `fn` (run at once), on a promise on purpose: the FUSE server then takes one
 * event-loop turn before its next blocking read of /dev/fuse, and the caller's next request (a
 * create is followed by its write, a release by the next create, an unlink by the next name's
 * lookup) has usually arrived by then, so the daemon does not go to sleep in read(2) and wait to
 * be scheduled again for it. Measured on the shared 2-core VM (load 12-40), 3,000 creates and
 * `rm -rf` of them interleaved with gocryptfs: answering create/release/unlink synchronously took
 * ~30% less daemon CPU but 0.31-0.46 of gocryptfs's create rate and 0.73-0.85 of its rm rate;
 * with this turn 0.57-0.64 and 0.91-1.15.
 */
function afterTurn<T>(fn: () => T | Promise<T>): Promise<T> {
  return Promise.resolve(fn());
}

export function fuseOperations(fs: EcryptfsFs): FuseOperations {
  return {
    // The metadata answers are synchronous lower calls: answered without a promise, the FUSE
    // server replies in the same turn and keeps reading /dev/fuse on this thread.
    lookup: (parent, name, ctx) => entry(fs.lookupSync(parent, name, ctx)),
    forget: (ino, n) => fs.forget(ino, n),
    getattr: (ino, _fh, ctx) => fs.getattrSync(ino, ctx),
    setattr: (ino, c, ctx) => fs.setattr(ino, { mode: c.mode, uid: c.uid, gid: c.gid, size: c.size, atimeMs: c.atimeMs, mtimeMs: c.mtimeMs, atimeNs: c.atimeNs, mtimeNs: c.mtimeNs }, ctx),
    readlink: (ino, ctx) => fs.readlink(ino, ctx),
    symlink: async (parent, name, target, ctx) => entry(await fs.symlink(parent, name, target, ctx)),
    mkdir: (parent, name, mode, ctx) => entry(fs.mkdirSync(parent, name, mode, ctx)),
    mknod: (parent, name, mode, rdev, ctx) => {
      if ((mode & S_IFMT) !== S_IFREG) return entry(fs.mknodSync(parent, name, mode, rdev, ctx));
      return mapMaybe(fs.createSync(parent, name, mode, O_WRONLY_CREAT_EXCL, ctx), (r) => mapMaybe(fs.release(r.fh), () => entry(r.entry)));
    },
    unlink: (parent, name, ctx) => afterTurn(() => fs.unlinkSync(parent, name, ctx)),
    rmdir: (parent, name, ctx) => fs.rmdirSync(parent, name, ctx),
    rename: (parent, name, newParent, newName, flags, ctx) => fs.renameSync(parent, name, newParent, newName, flags, ctx),
    link: async (ino, newParent, newName, ctx) => entry(await fs.link(ino, newParent, newName, ctx)),
    open: async (ino, flags, ctx) => ({ fh: await fs.openFile(ino, flags, ctx) }),
    create: (parent, name, mode, flags, ctx) => afterTurn(() => mapMaybe(fs.createSync(parent, name, mode, flags, ctx), (r) => ({ entry: entry(r.entry), open: { fh: r.fh } }))),
    // The FUSE server writes a synchronous answer before its next request: readReply may reuse its buffer.
    read: (_ino, fh, offset, size, ctx) => fs.readReply(fh, offset, size, ctx),
    readDone: (data) => fs.readDone(data),
    write: (_ino, fh, offset, data, ctx) => fs.write(fh, offset, data, ctx),
    // No FLUSH: writes reach the lower file before WRITE is answered (no writeback cache) and
    // locks are the kernel's, so a flush has nothing to do. Left out, the kernel gets ENOSYS once
    // and stops sending one per close(2): one round trip less per file created or read (measured,
    // quiet VM: create 0.45-0.48 -> 0.51 of gocryptfs on disk, cat 0.54-0.61 -> 0.59-0.62).
    release: (_ino, fh) => afterTurn(() => fs.release(fh)),
    fsync: (_ino, fh) => fs.fsync(fh),
    // Listings stream from the lower directory (getdents64 on a descriptor per open directory):
    // no snapshot, so a user holding many open directories costs descriptors, which are capped.
    opendir: (ino, _flags, ctx) => ({ fh: fs.opendir(ino, ctx) }),
    readdir: (_ino, fh, offset, size, ctx, plus) =>
      mapEntries(fs.readdirAt(fh, offset, Math.max(16, Math.ceil(size / (plus ? PLUS_ENTRY_BYTES : 32))), plus, ctx)),
    releasedir: (_ino, fh) => fs.releasedir(fh),
    statfs: () => fs.statfs(),
    setxattr: (ino, name, value, flags, ctx) => fs.setxattr(ino, name, value, flags, ctx),
    getxattr: (ino, name, ctx) => fs.getxattrSync(ino, name, ctx),
    listxattr: (ino, ctx) => fs.listxattrSync(ino, ctx),
    removexattr: (ino, name, ctx) => fs.removexattr(ino, name, ctx),
    fallocate: async (ino, _fh, offset, length, mode, ctx) => {
      if (mode !== 0) throw new FuseErrno(OSC.errno.EOPNOTSUPP);
      const a = await fs.getattr(ino, ctx);
      // With HANDLE_KILLPRIV_V2 the kernel leaves clearing setuid/setgid to us but marks no
      // FALLOCATE: clear them as for a write by anyone but root, also when the size stays (a local
      // filesystem's fallocate does: file_modified).
      if (ctx.uid !== 0) ctx.killSuidgid = true;
      if (offset + length > a.size) await fs.setattr(ino, { size: offset + length }, ctx);
      else if (ctx.killSuidgid) fs.dataModified(ino, ctx);
    },
    destroy: () => fs.closeAll(),
  };
}

/**
 * A root mount of a lower directory that a user controls (not root's, or writable by others)
 * gets nosuid,nodev unless the admin asked for suid or dev: a user could otherwise plant a
 * setuid-root file or a device node below and use it through the mount. `lower` is the served
 * root's own attributes (from the daemon's descriptor on it, not a path looked up again, which
 * a user could swap between this check and the mount).
 */
export function safeGeneric(generic: string[], lower: { uid: number; mode: number }): string[] {
  if (process.getuid?.() !== 0) return generic;
  const userOwned = lower.uid !== 0 || (lower.mode & 0o022) !== 0;
  if (!userOwned) return generic;
  const out = [...generic];
  if (!out.includes('suid') && !out.includes('nosuid')) out.push('nosuid');
  if (!out.includes('dev') && !out.includes('nodev')) out.push('nodev');
  return out;
}

function readdirplusMode(v: string | undefined): boolean | 'auto' {
  if (v === '0') return false;
  return v === '1' ? true : 'auto';
}

/** Seconds the kernel keeps names and attributes (FUSE entry and attribute timeouts). */
const CACHE_TIMEOUT = 1;

export async function serve(fs: EcryptfsFs, o: ServeOptions): Promise<Served> {
  fs.entryTimeoutMs = CACHE_TIMEOUT * 1000;
  const m = await mountFuse(fuseOperations(fs), {
    source: o.source,
    mountpoint: o.mountpoint,
    subtype: 'ecryptfs',
    readOnly: o.readOnly,
    allowOther: (process.getuid?.() ?? 0) === 0,
    extra: o.generic,
    // The caller's umask and POSIX ACLs are applied by the lower filesystem, as under the kernel
    // module (which runs in the caller's context): modes and default ACLs come out the same.
    server: {
      entryTimeout: CACHE_TIMEOUT,
      attrTimeout: CACHE_TIMEOUT,
      dontMask: true,
      posixAcl: true,
      // setuid/setgid cleared by the daemon on write, truncate and O_TRUNC open (fs/file-ops.ts
      // killSuidgid): the kernel then asks for security.capability once per attribute refresh
      // instead of a GETXATTR round trip before every write(2) (dd, 96 writes: 96 -> 2).
      handleKillpriv: true,
      onError: (e: unknown) => o.log(`internal error: ${(e as Error).message}`),
      // READDIRPLUS: a listing carries the LOOKUP answer of each name the kernel does not hold
      // yet (see FsDirOps.plusEntry), so a cold `ls -l` or `rm -rf` sends no LOOKUP per name.
      // The kernel's auto mode: plus for a directory's first chunk and for the next ones only
      // while the names listed get used (`ls -l` of 10,000 files: all 51 chunks plus), so `find`
      // or `ls` of a big directory does not stat and read the header of every file (10,000
      // files, cold: `find` 0.67 s auto, 1.60 s always, 0.73 s without).
      // ECRYPTFS_READDIRPLUS=0 turns it off, =1 asks for it always.
      readdirplus: readdirplusMode(process.env.ECRYPTFS_READDIRPLUS),
    },
  });
  return { unmounted: m.closed, unmount: () => m.unmount() };
}
