/**
 * The session counter of mount/umount.ecryptfs_private: /dev/shm/ecryptfs-USER-Private holds the
 * number of open sessions ("N\n"), so that only the last session to leave unmounts. ecryptfs-utils
 * flock()s it; Node has no flock, so a lock directory next to it (mkdir is atomic) serialises
 * the read-modify-write between concurrent logins and logouts.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';

export const counterPath = (user: string, alias = 'Private') => join('/dev/shm', `ecryptfs-${user}-${alias}`);

/** Add `delta` (or reset to zero) under the lock; returns the new count (never below 0). */
export async function bumpCounter(user: string, delta: number | 'zero'): Promise<number> {
  const file = counterPath(user);
  const lock = `${file}.lock`;
  for (let i = 0; ; i++) {
    try {
      await fsp.mkdir(lock, { mode: 0o700 });
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // A holder killed mid-update leaves the lock behind: after 5 s it is stale.
      if (i === 500) await fsp.rmdir(lock).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  try {
    const cur = Number((await fsp.readFile(file, 'utf8').catch(() => '0')).trim()) || 0;
    const next = delta === 'zero' ? 0 : Math.max(0, cur + delta);
    await fsp.writeFile(file, `${next}\n`, { mode: 0o600 });
    return next;
  } finally {
    await fsp.rmdir(lock).catch(() => undefined);
  }
}
