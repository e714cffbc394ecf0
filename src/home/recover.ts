/**
 * What ecryptfs-recover-private does (the command, with its questions, is
 * cli/recover-private.ts): find encrypted private directories, read the wrapped passphrase
 * beside one without following a user's link, and mount one with a MOUNT passphrase on a new
 * /tmp/ecryptfs.XXXXXXXX, read-only unless asked. It works without the kernel module, which is
 * why people reach for it: the mount is ours, through FUSE.
 */
import { closeSync, promises as fsp, mkdtempSync, rmdirSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { FNEK_PREFIX, parseEncryptedFilename } from '../format/filename.js';
import { isEcryptfsError } from '../errors.js';
import { unwrapPassphrase } from '../format/wrapped.js';
import { at, openDir, readHeldFile } from './held.js';
import { openDirPathTrusted } from '../lower/at.js';
import { addPrivateKeys, mountPrivateDir } from './private-mount.js';

export async function findPrivates(dir: string, depth: number, out: string[]): Promise<void> {
  if (depth > 6) return;
  const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isDirectory() || ['proc', 'sys', 'dev', 'run'].includes(e.name) && dir === '/') continue;
    const p = join(dir, e.name);
    if (e.name === '.Private') out.push(p);
    else await findPrivates(p, depth + 1, out);
  }
}

/**
 * The wrapped passphrase beside `priv` (../.ecryptfs/wrapped-passphrase), read as root without
 * following a link where the user could have put one: the user owns .ecryptfs and what is in it,
 * and may own the directories on the way to it, so that way is walked from / following root's
 * links only (openDirPathTrusted) and the rest is reached from that descriptor.
 * Returns the bytes, undefined when there is none, or why it is not used.
 */
export async function readWrapped(priv: string): Promise<Buffer | string | undefined> {
  const dir = dirname(resolve(priv));
  const shown = join(dir, '.ecryptfs');
  const refuse = (what: string) => `${what} is a symbolic link or not what it should be: not followed (run as root, this tool reads nothing a user can point elsewhere). Give the directory it stands for (for an encrypted home, /home/.ecryptfs/USER/.Private), or the MOUNT passphrase.`;
  let parent: number;
  try {
    parent = openDirPathTrusted(dir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ELOOP' || code === 'ENOTDIR' || code === 'ESTALE' ? refuse(`${dir} (or a directory on the way to it)`) : undefined;
  }
  let dot: FileHandle | undefined;
  try {
    try {
      dot = await openDir(undefined, at(parent, '.ecryptfs'));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return code === 'ENOENT' ? undefined : refuse(shown);
    }
    const file = join(shown, 'wrapped-passphrase');
    return await readHeldFile(dot, 'wrapped-passphrase', undefined, file).catch(() => refuse(file));
  } finally {
    await dot?.close();
    closeSync(parent);
  }
}

/**
 * The MOUNT passphrase wrapped in `wrapped` (what readWrapped found), unwrapped with the LOGIN
 * passphrase `login`; undefined when `login` does not unwrap it. The caller zeroes the result.
 */
export function unwrapWithLogin(wrapped: Buffer, login: string | Uint8Array): Buffer | undefined {
  try {
    return unwrapPassphrase(wrapped, login);
  } catch (e) {
    if (isEcryptfsError(e, 'EWRONGPASS')) return undefined;
    throw e;
  }
}

/**
 * Mount the lower directory `d` with the MOUNT passphrase (zeroed here) on a new /tmp/ecryptfs.*:
 * the mount's exit code and where.
 */
export async function mountRecovered(d: string, passphrase: Buffer, rw: boolean): Promise<{ code: number; tmpdir: string }> {
  // As the real script does: the keys go into root's keyring (as ecryptfs-add-passphrase --fnek),
  // the mount names them by sig (no passphrase in a file or on a command line), and they are
  // unlinked at unmount; the options are the Private tools' own.
  let fileSig: string, fnekSig: string;
  try {
    [fileSig, fnekSig] = await addPrivateKeys(passphrase);
  } finally {
    passphrase.fill(0);
  }
  // Listed through root's links only, as the mount resolves `d` (one a user made: the mount says so).
  let names: string[] = [];
  try {
    const fd = openDirPathTrusted(resolve(d));
    try {
      names = (await fsp.readdir(`/proc/self/fd/${fd}`)).filter((n) => n.startsWith(FNEK_PREFIX));
    } finally {
      closeSync(fd);
    }
  } catch {
    // refused below, with the reason
  }
  const nameSig = names.length ? parseEncryptedFilename(names[0]).sig : undefined;
  // names under the file key itself (a FNEK sig equal to the file sig) are read with that key
  const sigs = nameSig ? [fileSig, nameSig === fileSig ? fileSig : fnekSig] : [fileSig];
  const tmpdir = mkdtempSync('/tmp/ecryptfs.');
  try {
    return { code: await mountPrivateDir(d, tmpdir, sigs, ['ecryptfs_passthrough=n', rw ? 'rw' : 'ro'], true), tmpdir };
  } catch (e) {
    rmdirSync(tmpdir);
    throw e;
  }
}
