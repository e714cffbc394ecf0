/** Atomic whole-file replacement, for key files and the system files the setup tools edit. */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Replace a file whole: written under a temporary name with its mode from creation (0600 by
 * default: key files), owned by `owner` when given (root writing for a user), synced, then renamed
 * over the old one, so a crash leaves the old file or the new one, never half of either.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, opts: { mode?: number; owner?: { uid: number; gid: number } } = {}): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}-${randomBytes(4).toString('hex')}`);
  const fh = await fsp.open(tmp, 'wx', opts.mode ?? 0o600);
  try {
    await fh.writeFile(data);
    if (opts.owner) await fh.chown(opts.owner.uid, opts.owner.gid);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  await fsp.rename(tmp, path);
}
