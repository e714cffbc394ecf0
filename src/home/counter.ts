/**
 * The session counter of mount/umount.ecryptfs_private: /dev/shm/ecryptfs-USER-Private holds the
 * number of open sessions ("N\n"), so that only the last session to leave unmounts. ecryptfs-utils
 * flock()s it; Node has no flock, so a lock directory next to it (mkdir is atomic) serialises
 * the read-modify-write between concurrent logins and logouts.
 *
 * /dev/shm is writable by everyone: another user can put a file, a directory or a symlink in the
 * place of either name. So the counter is opened without following links (and without blocking
 * on a FIFO) and used only if what was opened is a regular file of the user's; the lock is used
 * only if it is the user's directory, and waited for at most LOCK_WAIT_MS. Root (setup-private's
 * self-test for `-u USER`, the PAM hook) removes a foreign one and creates the files for the
 * user, owned by the user, so the user's own later logins can open them. Nothing here waits
 * longer than a few seconds or throws at a login: an unusable counter is reported on stderr and
 * the count taken as "this is the only session".
 */
import { constants, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { lookupAccount } from './account.js';

/** The session counter of USER's ALIAS mount (in /dev/shm, or `shm` where a test puts it); its lock is PATH.lock. */
export const counterPath = (user: string, alias = 'Private', shm = '/dev/shm') => join(shm, `ecryptfs-${user}-${alias}`);
export const counterLockPath = (counter: string) => `${counter}.lock`;

const LOCK_WAIT_MS = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const code = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** The uid the files must belong to: the user's (root creates them for the user). */
function ownerOf(user: string): number {
  const me = process.getuid?.() ?? 0;
  if (me !== 0) return me;
  try {
    return lookupAccount(user).uid;
  } catch {
    return me;
  }
}

/** Describe what is at `p` for a message ("a symlink owned by uid 1001"). */
async function what(p: string): Promise<string> {
  const st = await fsp.lstat(p).catch(() => undefined);
  if (!st) return 'nothing';
  const kind = st.isSymbolicLink() ? 'a symlink' : st.isDirectory() ? 'a directory' : st.isFile() ? 'a file' : 'a special file';
  return `${kind} owned by uid ${st.uid}`;
}

/**
 * Root takes away what another user put at `p`, never recursing into it (a tree the other user
 * controls could be changed under a recursive removal): unlink, rmdir, or else rename it aside.
 */
async function removeForeign(p: string): Promise<void> {
  const st = await fsp.lstat(p).catch(() => undefined);
  if (!st) return;
  if (!st.isDirectory()) return fsp.unlink(p).catch(() => undefined);
  await fsp.rmdir(p).catch(() => fsp.rename(p, `${p}.foreign-${process.pid}-${Date.now()}`).catch(() => undefined));
}

/** Take the lock; false when it could not be had in time (then the update goes unlocked). */
async function lock(path: string, uid: number): Promise<boolean> {
  const asRoot = (process.getuid?.() ?? 0) === 0;
  const deadline = Date.now() + LOCK_WAIT_MS;
  let cleared = false;
  for (;;) {
    try {
      await fsp.mkdir(path, { mode: 0o700 });
      if (asRoot) await fsp.lchown(path, uid, -1).catch(() => undefined);
      return true;
    } catch (e) {
      if (code(e) !== 'EEXIST') return false;
    }
    const st = await fsp.lstat(path).catch(() => undefined);
    const foreign = st !== undefined && (!st.isDirectory() || st.uid !== uid);
    if (foreign && asRoot && !cleared) {
      // Not the user's: root may remove it (rm of a symlink removes the link, never its target).
      cleared = true;
      await removeForeign(path);
      continue;
    }
    if (foreign || Date.now() >= deadline) {
      // A foreign lock cannot be removed by the user (sticky /dev/shm); a holder killed mid-update
      // leaves the user's own behind: after the wait it is stale. Either way, go on without it.
      if (!foreign) await fsp.rmdir(path).catch(() => undefined);
      if (foreign) process.stderr.write(`WARNING: ${path} is ${await what(path)}, not your session lock: ignored (root can remove it)\n`);
      return false;
    }
    await sleep(10);
  }
}

/** Open the counter file no-follow, create it for the user if missing; undefined if unusable. */
async function openCounter(file: string, uid: number): Promise<fsp.FileHandle | undefined> {
  const asRoot = (process.getuid?.() ?? 0) === 0;
  for (let attempt = 0; attempt < 2; attempt++) {
    let fh: fsp.FileHandle | undefined;
    try {
      fh = await fsp.open(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o600);
      const st = await fh.stat();
      if (st.isFile() && st.uid === uid) return fh;
      // Created just now by root for the user: give it to the user.
      if (st.isFile() && asRoot && st.uid === 0 && st.size === 0) {
        await fh.chown(uid, -1);
        await fh.chmod(0o600);
        return fh;
      }
      await fh.close();
      fh = undefined;
    } catch (e) {
      await fh?.close();
      if (!['ELOOP', 'EACCES', 'EPERM', 'ENXIO', 'EISDIR', 'EMLINK'].includes(code(e) ?? '')) throw e;
    }
    if (!asRoot || attempt > 0) break;
    await removeForeign(file);
  }
  process.stderr.write(`WARNING: ${file} is ${await what(file)}, not your session counter: ignored (root can remove it)\n`);
  return undefined;
}

/** Add `delta` (or reset to zero) under the lock; returns the new count (never below 0). */
export async function bumpCounter(user: string, delta: number | 'zero', alias = 'Private'): Promise<number> {
  const file = counterPath(user, alias);
  const uid = ownerOf(user);
  const locked = await lock(counterLockPath(file), uid);
  try {
    const fh = await openCounter(file, uid);
    // An unusable counter: count this session as the only one.
    if (!fh) return delta === 'zero' ? 0 : Math.max(0, typeof delta === 'number' ? delta : 0);
    try {
      const buf = Buffer.alloc(32);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      const cur = Number(buf.subarray(0, bytesRead).toString('latin1').trim()) || 0;
      const next = delta === 'zero' ? 0 : Math.max(0, cur + delta);
      await fh.truncate(0);
      await fh.write(`${next}\n`, 0);
      return next;
    } finally {
      await fh.close();
    }
  } finally {
    if (locked) await fsp.rmdir(counterLockPath(file)).catch(() => undefined);
  }
}
