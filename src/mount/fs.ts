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
export { ErrnoError, toErrno } from './fs/errno.js';
export { ROOT, type Attr, type Caller, type Entry, type FsOptions } from './fs/types.js';
export { lowerMaxBytes } from './fs/limits.js';
export { headerFromXattr } from './fs/encrypted-view.js';
import { FsXattrOps } from './fs/xattr-ops.js';

/** The whole filesystem: src/mount/fs/ holds its parts, by kind of operation. */
export class EcryptfsFs extends FsXattrOps {}
