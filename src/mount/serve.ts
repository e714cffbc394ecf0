/**
 * Serve an EcryptfsFs through FUSE: the adapter from the generic FUSE operations to the
 * eCryptfs filesystem layer, and the mount itself (root: mount(8) with our /dev/fuse fd;
 * non-root: the descriptor fusermount3 handed to us as ECRYPTFS_FUSE_FD).
 */
import { constants as OSC } from 'node:os';
import { FuseErrno, FuseServer, type FuseOperations } from '../fuse/server.js';
import { mountAsRoot, unmount } from '../fuse/mount.js';
import type { EcryptfsFs } from './fs.js';

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

export function fuseOperations(fs: EcryptfsFs): FuseOperations {
  const str = (b: Buffer) => b.toString('utf8');
  return {
    lookup: (parent, name) => fs.lookup(parent, str(name)),
    forget: (nodeid, n) => fs.forget(nodeid, n),
    getattr: (nodeid) => fs.getattr(nodeid),
    setattr: (nodeid, c) => fs.setattr(nodeid, c),
    readlink: async (nodeid) => Buffer.from(await fs.readlink(nodeid), 'utf8'),
    symlink: (parent, name, target, ctx) => fs.symlink(parent, str(name), str(target), ctx.uid, ctx.gid),
    mkdir: (parent, name, mode, ctx) => fs.mkdir(parent, str(name), mode, ctx.uid, ctx.gid),
    mknod: async (parent, name, mode, _rdev, ctx) => {
      if ((mode & S_IFMT) !== S_IFREG) throw new FuseErrno(OSC.errno.EPERM, 'only regular files can be created');
      const r = await fs.create(parent, str(name), mode, O_WRONLY_CREAT_EXCL, ctx.uid, ctx.gid);
      await fs.release(r.fh);
      return r.entry;
    },
    unlink: (parent, name) => fs.unlink(parent, str(name)),
    rmdir: (parent, name) => fs.rmdir(parent, str(name)),
    rename: (parent, name, newParent, newName, flags) => fs.rename(parent, str(name), newParent, str(newName), flags),
    link: (nodeid, newParent, newName) => fs.link(nodeid, newParent, str(newName)),
    open: (nodeid, flags) => fs.openFile(nodeid, flags),
    create: (parent, name, mode, flags, ctx) => fs.create(parent, str(name), mode, flags, ctx.uid, ctx.gid),
    read: (_nodeid, fh, offset, size) => fs.read(fh, offset, size),
    write: (_nodeid, fh, offset, data) => fs.write(fh, offset, data),
    flush: async () => undefined,
    release: (_nodeid, fh) => fs.release(fh),
    fsync: (_nodeid, fh) => fs.fsync(fh),
    readdir: async (nodeid) => (await fs.readdir(nodeid)).map((e) => ({ name: Buffer.from(e.name, 'utf8'), ino: e.ino, type: e.type })),
    statfs: () => fs.statfs(),
    setxattr: (nodeid, name, value, flags) => fs.setxattr(nodeid, name, value, flags),
    getxattr: (nodeid, name) => fs.getxattr(nodeid, name),
    listxattr: (nodeid) => fs.listxattr(nodeid),
    removexattr: (nodeid, name) => fs.removexattr(nodeid, name),
    fallocate: async (nodeid, _fh, offset, length, mode) => {
      if (mode !== 0) throw new FuseErrno(OSC.errno.EOPNOTSUPP);
      const a = await fs.getattr(nodeid);
      if (offset + length > a.size) await fs.setattr(nodeid, { size: offset + length });
    },
    destroy: () => fs.closeAll(),
  };
}

export async function serve(fs: EcryptfsFs, o: ServeOptions): Promise<Served> {
  const inherited = process.env.ECRYPTFS_FUSE_FD;
  const params = { source: o.source, mountpoint: o.mountpoint, subtype: 'ecryptfs', readOnly: o.readOnly, allowOther: !inherited, extra: o.generic };
  const fd = inherited ? Number(inherited) : await mountAsRoot(params);
  const server = new FuseServer(fd, fuseOperations(fs), { log: o.log });
  server.start();
  return {
    unmounted: server.closed,
    unmount: async () => {
      await unmount(o.mountpoint).catch(async () => unmount(o.mountpoint, true));
    },
  };
}
