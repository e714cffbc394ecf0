/**
 * ecryptfs-mount-private and ecryptfs-umount-private: ~/.Private (or an encrypted home's lower
 * directory) mounted on Private.mnt's path with the keys of Private.sig, unwrapped from
 * wrapped-passphrase when they are not in the keyring yet. A session counter in /dev/shm lets
 * the last session unmount. Messages follow ecryptfs-utils.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { isEcryptfsError } from '../errors.js';
import { buildAuthTok } from '../format/authtok.js';
import { deriveKeyAsync, DEFAULT_SALT, FNEK_SALT } from '../format/kdf.js';
import { unwrapPassphrase } from '../format/wrapped.js';
import { addKey, findKey, linkUserIntoSession, unlinkKey } from '../sys/keyring.js';
import { mountEcryptfs, umountEcryptfs } from '../mount/launch.js';
import { parseSigFile } from '../volume/keysource.js';
import { type Account, currentAccount, isMounted, mountPointOf, type PrivatePaths, privatePaths } from './account.js';
import { bumpCounter } from './counter.js';
import type { ToolIO } from './io.js';

export const PW_ATTEMPTS = 3;

/**
 * The key auth toks of a mount passphrase: FNEK first, then the file key (as
 * ecryptfs-add-passphrase --fnek); `out`, when given, hears what was inserted.
 */
export async function addPrivateKeys(pass: Uint8Array, out?: (text: string) => void): Promise<[string, string]> {
  await linkUserIntoSession();
  const file = await deriveKeyAsync(pass, DEFAULT_SALT);
  const fnek = await deriveKeyAsync(pass, FNEK_SALT);
  await addKey(file.sig, buildAuthTok(file.key, file.sig, DEFAULT_SALT));
  await addKey(fnek.sig, buildAuthTok(fnek.key, fnek.sig, FNEK_SALT));
  file.key.fill(0);
  fnek.key.fill(0);
  out?.(`Inserted auth tok with sig [${file.sig}] into the user session keyring\nInserted auth tok with sig [${fnek.sig}] into the user session keyring\n`);
  return [file.sig, fnek.sig];
}

/** Unwrap a wrapped passphrase with `login` and insert its keys; the file key's sig. EWRONGPASS when `login` does not unwrap it. */
export async function insertWrapped(wrapped: Buffer, login: Uint8Array): Promise<string> {
  const pass = unwrapPassphrase(wrapped, login);
  try {
    return (await addPrivateKeys(pass))[0];
  } finally {
    pass.fill(0);
  }
}

/**
 * The options mount.ecryptfs_private mounts with (AES-128, names under the FNEK when Private.sig
 * has a second sig, keys unlinked at unmount), without our helper's questions.
 */
export function privateMountOptions(sigs: string[]): string {
  return [`ecryptfs_sig=${sigs[0]}`, ...(sigs[1] ? [`ecryptfs_fnek_sig=${sigs[1]}`] : []), 'ecryptfs_cipher=aes', 'ecryptfs_key_bytes=16', 'ecryptfs_unlink_sigs', 'no_sig_cache', 'verbosity=0', 'nosuid', 'nodev'].join(',');
}

/**
 * Mount `lower` on `upper` with the Private tools' options, quietly (the helper's lines are not the
 * tools' output). `rootsLinksOnly`: root mounting a user's directory follows none of the user's links.
 */
export const mountPrivateDir = (lower: string, upper: string, sigs: string[], extra: string[] = [], rootsLinksOnly = false): Promise<number> =>
  mountEcryptfs({ lower, upper, options: [privateMountOptions(sigs), ...extra].join(','), foreground: false, quiet: true, rootsLinksOnly });

/**
 * A session's mount, counted: the session counter goes up, and unless already mounted, `lower` is
 * mounted on `upper`. The mount point is 0500 while unmounted (nothing can be written into it by
 * mistake) but fusermount3 wants write access to it; the mount then covers it. A mount that fails
 * (or throws) is no session: the count goes back and so does the mount point's mode.
 */
export async function mountCounted(user: string, alias: string, lower: string, upper: string, sigs: string[], extra: string[]): Promise<number> {
  await bumpCounter(user, 1, alias);
  if (await isMounted(upper)) return 0;
  let rc = 1;
  let mode: number | undefined;
  try {
    const st = await fsp.stat(upper);
    if ((st.mode & 0o200) === 0) {
      mode = st.mode & 0o777;
      await fsp.chmod(upper, mode | 0o700);
    }
    rc = await mountPrivateDir(lower, upper, sigs, extra);
  } finally {
    if (rc !== 0) {
      await bumpCounter(user, -1, alias);
      if (mode !== undefined) await fsp.chmod(upper, mode).catch(() => undefined);
    }
  }
  return rc;
}

/** Mount the lower directory on Private.mnt with the keys named in Private.sig (already in @u). */
export async function mountPrivateNow(who: Account, p: PrivatePaths, sigs: string[]): Promise<number> {
  // As mount.ecryptfs_private does: a user mounts only a lower directory of their own.
  return mountCounted(who.name, 'Private', p.lower, await mountPointOf(p), sigs, process.getuid?.() === 0 ? [] : ['ecryptfs_check_dev_ruid']);
}

/** ecryptfs-mount-private: the keys from the keyring, else unwrapped with the login (or wrapping) passphrase asked through `io`. */
export async function mountPrivate(io: ToolIO, who: Account = currentAccount()): Promise<number> {
  const p = privatePaths(who.home);
  const sigText = await fsp.readFile(p.sig, 'utf8').catch(() => undefined);
  const sigs = sigText === undefined ? [] : parseSigFile(sigText, p.sig);
  if (sigs.length && (await Promise.all(sigs.map((s) => findKey(s)))).every((x) => x !== undefined)) return mountPrivateNow(who, p, sigs);
  if (sigText === undefined || !(await fsp.stat(p.wrapped).catch(() => undefined))) {
    io.err('ERROR: Encrypted private directory is not setup properly\n');
    return 1;
  }
  const independent = await fsp.stat(join(p.dot, 'wrapping-independent')).then(() => true, () => false);
  let ok = false;
  for (let tries = 0; tries < PW_ATTEMPTS && !ok; tries++) {
    const login = await io.secret(independent ? 'Enter your wrapping passphrase: ' : 'Enter your login passphrase: ');
    try {
      await insertWrapped(await fsp.readFile(p.wrapped), login);
      ok = true;
    } catch (e) {
      if (!isEcryptfsError(e, 'EWRONGPASS')) throw e;
      io.out('ERROR: Your passphrase is incorrect\n');
      if (!io.interactive()) break;
    } finally {
      login.fill(0);
    }
  }
  if (!ok) {
    io.out('ERROR: Too many incorrect password attempts, exiting\n');
    return 1;
  }
  const rc = await mountPrivateNow(who, p, sigs);
  const mp = await mountPointOf(p);
  if (rc === 0 && process.cwd() === mp) io.out(`\nINFO: Your private directory has been mounted.\nINFO: To see this change in your current shell:\n  cd ${mp}\n\n`);
  return rc;
}

/** ecryptfs-umount-private: leave one session; the last one (or `force`, -f) unmounts and unlinks the keys. */
export async function umountPrivate(io: ToolIO, force: boolean, who: Account = currentAccount()): Promise<number> {
  const p = privatePaths(who.home);
  const left = await bumpCounter(who.name, force ? 'zero' : -1);
  if (left > 0) {
    io.err('Sessions still open, not unmounting\n');
    return 1;
  }
  const mp = await mountPointOf(p);
  if (await isMounted(mp)) {
    const rc = await umountEcryptfs(mp);
    if (rc !== 0) return rc;
    await fsp.chmod(mp, 0o500).catch(() => undefined);
  }
  const sigText = await fsp.readFile(p.sig, 'utf8').catch(() => '');
  for (const s of sigText ? parseSigFile(sigText, p.sig) : []) await unlinkKey(s).catch(() => false);
  return 0;
}
