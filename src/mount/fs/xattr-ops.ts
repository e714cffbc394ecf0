/** Extended attributes: user.*, ACLs and file capabilities kept on the lower inode; the header xattr hidden. */
import * as nodefs from 'node:fs';
import { constants as OSC } from 'node:os';
import { isDir } from '../../lower/at.js';
import { asCaller, callerCreds, type Creds } from '../../lower/creds.js';
import * as sys from '../../lower/sys.js';
import { XATTR_NAME } from '../../volume/file.js';
import { ErrnoError, toErrno } from './errno.js';
import { ROOT, type Caller, type Node } from './types.js';

import { FsFileOps } from './file-ops.js';

const E = OSC.errno;
const CAP_XATTR = 'security.capability';

/**
 * Names `ls -l` asks for on every entry (its SELinux label, then the ACL test; the kernel asks for
 * the ACLs again whenever it revalidates an inode). Their absence is kept per node while the lower
 * ctime stays the same: one fstatat instead of an O_PATH open, a checked fstat, a getxattr through
 * /proc/self/fd and a close. security.* and system.* reads have no permission check in the VFS.
 */
const ABSENT_BITS = new Map([['security.selinux', 1], ['system.posix_acl_access', 2], ['system.posix_acl_default', 4]]);

/**
 * `ls -l` (coreutils) asks every entry for its SELinux label and stops asking for the whole
 * device once one answer is "not supported" (EOPNOTSUPP), never after "no such attribute"
 * (ENODATA). Without SELinux this name is only ever a stored lower xattr, so a lower inode without
 * one answers EOPNOTSUPP: one GETXATTR round trip less per listed entry; a label that is there is
 * still returned. With SELinux on (selinuxfs mounted) the kernel answers users' questions for it
 * itself, and a policy labelling this filesystem from xattrs would take EOPNOTSUPP for a failure
 * (ENODATA for "use the default label"): then the answer stays ENODATA.
 */
const SELINUX_XATTR = 'security.selinux';
const SELINUX_ON = nodefs.existsSync('/sys/fs/selinux/enforce');

export class FsXattrOps extends FsFileOps {
  /**
   * Run an xattr call on the node's own lower inode, as the caller, through a /proc/self/fd link
   * (followed, it lands on exactly that inode): a directory by its own descriptor, anything else by
   * an O_PATH descriptor opened no-follow and checked to be the node (onNode), so a name swapped
   * in the lower directory never takes the call elsewhere.
   */
  protected xattrOn<T>(n: Node, cr: Creds | undefined, byPath: (p: Buffer) => T): T {
    if (n.nodeid === ROOT || isDir(n.type)) return asCaller(cr, () => byPath(sys.fdPath(n.nodeid === ROOT ? this.rootFd : this.dirFd(n.nodeid))));
    return this.onNode(n, cr, (fd) => byPath(sys.fdPath(fd)));
  }

  /** trusted.* is only for root callers (the daemon's CAP_SYS_ADMIN must not show it to users). */
  protected static hiddenName(name: string, ctx: Caller | undefined): boolean {
    return name.startsWith('trusted.') && (ctx?.uid ?? 0) !== 0;
  }

  async getxattr(nodeid: number, name: string, ctx?: Caller): Promise<Buffer> {
    return this.getxattrSync(nodeid, name, ctx);
  }

  getxattrSync(nodeid: number, name: string, ctx?: Caller): Buffer {
    if (name === XATTR_NAME && !this.encryptedView) throw new ErrnoError(E.ENODATA);
    if (FsXattrOps.hiddenName(name, ctx)) throw new ErrnoError(E.ENODATA);
    const n = this.node(nodeid);
    const get = () => this.xattrOn(n, callerCreds(ctx), (p) => sys.getxattr(p, name));
    const bit = ABSENT_BITS.get(name);
    if (bit !== undefined) {
      try {
        return this.unlessAbsent(n, bit, callerCreds(ctx), get);
      } catch (e) {
        throw name === SELINUX_XATTR && !SELINUX_ON && toErrno(e) === E.ENODATA ? new ErrnoError(E.EOPNOTSUPP) : e;
      }
    }
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

  /**
   * `get()`, or ENODATA when the node's lower inode is known to lack this name at its current
   * ctime. Not known yet: one listxattr tells for every name in ABSENT_BITS (`ls -l` asks for the
   * next one right after).
   */
  private unlessAbsent(n: Node, bit: number, cr: Creds | undefined, get: () => Buffer): Buffer {
    let known = 0;
    if (n.absentCtime !== 0) {
      let ctime: number;
      try {
        ctime = Number(this.statNode(n).ctimeNs);
      } catch {
        return get();
      }
      if (n.absentCtime === ctime) known = n.absent;
    }
    if (!(known & bit)) {
      let seen: { ctime: number; names: string[] };
      try {
        seen = this.listedAt(n, cr);
      } catch {
        return get();
      }
      known = 0;
      for (const [x, b] of ABSENT_BITS) if (!seen.names.includes(x)) known |= b;
      n.absent = known;
      n.absentCtime = seen.ctime;
    }
    if (known & bit) throw new ErrnoError(E.ENODATA);
    return get();
  }

  /**
   * The names on the node's lower inode and its ctime, stat first, then list (a change in between
   * moves ctime past the one remembered). A file's ctime comes from the fstat that checks its
   * O_PATH descriptor (onNode): no stat of its name before.
   */
  private listedAt(n: Node, cr: Creds | undefined): { ctime: number; names: string[] } {
    if (n.nodeid === ROOT || isDir(n.type)) {
      const ctime = Number(this.statNode(n).ctimeNs);
      return { ctime, names: this.xattrOn(n, cr, (p) => sys.listxattr(p)) };
    }
    return asCaller(cr, () => this.listedByName(n)) ?? this.onNode(n, cr, (fd, st) => ({ ctime: Number(st!.ctimeNs), names: sys.listxattr(sys.fdPath(fd)) }));
  }

  /**
   * listedAt by the node's name in its directory (listxattrat, no-follow: three syscalls against
   * an O_PATH open, fstat, listxattr through /proc and close), or undefined to take that way. The
   * name is stat'ed before and after the list: both must show the node's inode at one ctime. A
   * name moved to another inode in between and back would have moved this inode's ctime (a
   * rename, unlink or link does), so the list is of this inode, as of that ctime or later.
   */
  private listedByName(n: Node): { ctime: number; names: string[] } | undefined {
    const dir = this.dirFd(n.parent);
    const before = sys.fstatatOrErrno(dir, n.name);
    if (typeof before === 'number' || before.dev !== n.dev || before.ino !== n.ino) return undefined;
    const names = sys.listxattratOrErrno(dir, n.name);
    if (typeof names === 'number') return undefined;
    const after = sys.fstatatOrErrno(dir, n.name);
    if (typeof after === 'number' || after.dev !== n.dev || after.ino !== n.ino || after.ctimeNs !== before.ctimeNs) return undefined;
    return { ctime: Number(before.ctimeNs), names };
  }

  async setxattr(nodeid: number, name: string, value: Buffer, flags: number, ctx?: Caller): Promise<void> {
    this.writable();
    if (name === XATTR_NAME) throw new ErrnoError(E.EPERM);
    if (FsXattrOps.hiddenName(name, ctx)) throw new ErrnoError(E.EPERM);
    // File capabilities are root's to set (the kernel checked CAP_SETFCAP; the daemon keeps it true).
    if (name === CAP_XATTR && (ctx?.uid ?? 0) !== 0) throw new ErrnoError(E.EPERM);
    const n = this.node(nodeid);
    n.cap = undefined;
    n.absent = 0;
    this.xattrOn(n, callerCreds(ctx), (p) => sys.setxattr(p, name, value, flags));
  }

  async listxattr(nodeid: number, ctx?: Caller): Promise<string[]> {
    return this.listxattrSync(nodeid, ctx);
  }

  listxattrSync(nodeid: number, ctx?: Caller): string[] {
    const n = this.node(nodeid);
    const names = this.xattrOn(n, callerCreds(ctx), (p) => sys.listxattr(p));
    return names.filter((x) => x !== XATTR_NAME && !FsXattrOps.hiddenName(x, ctx));
  }

  async removexattr(nodeid: number, name: string, ctx?: Caller): Promise<void> {
    this.writable();
    if (name === XATTR_NAME) throw new ErrnoError(E.EPERM);
    if (FsXattrOps.hiddenName(name, ctx)) throw new ErrnoError(E.EPERM);
    const n = this.node(nodeid);
    n.cap = undefined;
    n.absent = 0;
    this.xattrOn(n, callerCreds(ctx), (p) => sys.removexattr(p, name));
  }
}
