/**
 * Serve an EcryptfsFs through FUSE: the adapter from the generic FUSE operations (src/fuse) to
 * the eCryptfs filesystem layer, and the mount (root: mount(8) with our /dev/fuse descriptor;
 * ordinary users: the descriptor fusermount3 handed over as FUSE_FD), with the watchdog that
 * clears the mount if the daemon dies.
 */
import { constants as OSC } from 'node:os';
import { FuseErrno } from '../fuse/errno.js';
import { mountFuse } from '../fuse/mount.js';
import type { Entry as FuseEntry, FuseOperations } from '../fuse/operations.js';
import type { EcryptfsFs, Entry } from './fs.js';

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

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const O_WRONLY_CREAT_EXCL = 0o1 | 0o100 | 0o200;
const MODE: Record<string, number> = { file: 0o100000, dir: 0o040000, symlink: 0o120000, other: 0 };

const entry = (e: Entry): FuseEntry => ({ ino: e.nodeid, attr: e.attr });

export function fuseOperations(fs: EcryptfsFs): FuseOperations {
  const str = (b: Buffer) => b.toString('utf8');
  return {
    lookup: async (parent, name) => entry(await fs.lookup(parent, str(name))),
    forget: (ino, n) => fs.forget(ino, n),
    getattr: (ino) => fs.getattr(ino),
    setattr: (ino, c) =>
      fs.setattr(ino, {
        mode: c.mode, uid: c.uid, gid: c.gid, size: c.size,
        atimeMs: c.atimeMs === 'now' ? Date.now() : c.atimeMs,
        mtimeMs: c.mtimeMs === 'now' ? Date.now() : c.mtimeMs,
      }),
    readlink: (ino) => fs.readlink(ino),
    symlink: async (parent, name, target, ctx) => entry(await fs.symlink(parent, str(name), str(target), ctx.uid, ctx.gid)),
    mkdir: async (parent, name, mode, ctx) => entry(await fs.mkdir(parent, str(name), mode, ctx.uid, ctx.gid)),
    mknod: async (parent, name, mode, _rdev, ctx) => {
      if ((mode & S_IFMT) !== S_IFREG) throw new FuseErrno(OSC.errno.EPERM);
      const r = await fs.create(parent, str(name), mode, O_WRONLY_CREAT_EXCL, ctx.uid, ctx.gid);
      await fs.release(r.fh);
      return entry(r.entry);
    },
    unlink: (parent, name) => fs.unlink(parent, str(name)),
    rmdir: (parent, name) => fs.rmdir(parent, str(name)),
    rename: (parent, name, newParent, newName, flags) => fs.rename(parent, str(name), newParent, str(newName), flags),
    link: async (ino, newParent, newName) => entry(await fs.link(ino, newParent, str(newName))),
    open: async (ino, flags) => ({ fh: await fs.openFile(ino, flags) }),
    create: async (parent, name, mode, flags, ctx) => {
      const r = await fs.create(parent, str(name), mode, flags, ctx.uid, ctx.gid);
      return { entry: entry(r.entry), open: { fh: r.fh } };
    },
    read: (_ino, fh, offset, size) => fs.read(fh, offset, size),
    write: (_ino, fh, offset, data) => fs.write(fh, offset, data),
    flush: () => undefined,
    release: (_ino, fh) => fs.release(fh),
    fsync: (_ino, fh) => fs.fsync(fh),
    // A directory's listing is read once at opendir so offsets stay stable while it is read.
    opendir: async (ino) => ({ fh: fs.snapshotDir(ino, await listWithDots(fs, ino)) }),
    readdir: (_ino, fh, offset) => fs.dirSnapshot(fh).slice(offset),
    releasedir: (_ino, fh) => fs.dropDirSnapshot(fh),
    statfs: () => fs.statfs(),
    setxattr: (ino, name, value, flags) => fs.setxattr(ino, name, value, flags),
    getxattr: (ino, name) => fs.getxattr(ino, name),
    listxattr: (ino) => fs.listxattr(ino),
    removexattr: (ino, name) => fs.removexattr(ino, name),
    fallocate: async (ino, _fh, offset, length, mode) => {
      if (mode !== 0) throw new FuseErrno(OSC.errno.EOPNOTSUPP);
      const a = await fs.getattr(ino);
      if (offset + length > a.size) await fs.setattr(ino, { size: offset + length });
    },
    destroy: () => fs.closeAll(),
  };
}

async function listWithDots(fs: EcryptfsFs, ino: number) {
  const entries = await fs.readdir(ino);
  return [
    { name: '.', ino, mode: MODE.dir },
    { name: '..', ino: 1, mode: MODE.dir },
    ...entries.map((e) => ({ name: Buffer.from(e.name, 'utf8'), ino: e.ino, mode: MODE[e.type] })),
  ];
}

export async function serve(fs: EcryptfsFs, o: ServeOptions): Promise<Served> {
  const m = await mountFuse(fuseOperations(fs), {
    source: o.source,
    mountpoint: o.mountpoint,
    subtype: 'ecryptfs',
    readOnly: o.readOnly,
    allowOther: (process.getuid?.() ?? 0) === 0,
    extra: o.generic,
    server: { onError: (e: unknown) => o.log(`internal error: ${(e as Error).message}`) },
  });
  return { unmounted: m.closed, unmount: () => m.unmount() };
}
