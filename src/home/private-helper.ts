/**
 * mount.ecryptfs_private [ALIAS] and umount.ecryptfs_private [-f] [-d] [ALIAS], ecryptfs-utils'
 * helpers, run as the user (the commands are cli/mount-private.ts). Without ALIAS: ~/.Private on ~/Private (or Private.mnt's path) with
 * the keys of ~/.ecryptfs/Private.sig. With ALIAS: the fstab(5)-style first line "LOWER UPPER
 * ecryptfs" of ~/.ecryptfs/ALIAS.conf (a regular file the user owns, no mount options) and the
 * keys of ~/.ecryptfs/ALIAS.sig (file key, then the FNEK if names are encrypted). The keys must
 * be in the user keyring already; the mount point must be a directory the user owns on an
 * ordinary filesystem, and the lower directory the user's own (ecryptfs_check_dev_ruid). A session
 * counter /dev/shm/ecryptfs-USER-ALIAS lets the last session unmount, as in the real helpers.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { EcryptfsError } from '../errors.js';
import { findKey, unlinkKey } from '../sys/keyring.js';
import { unescapeMountField } from '../sys/mounts.js';
import { umountEcryptfs } from '../mount/launch.js';
import { parseSigFile } from '../volume/keysource.js';
import { currentAccount, isMounted, mountPointOf, privatePaths } from './account.js';
import { bumpCounter } from './counter.js';
import { mountCounted } from './private-mount.js';
import type { ToolIO } from './io.js';

const DEFAULT_ALIAS = 'Private';

/** The first entry of an fstab(5)-style text: [fsname, dir, type, opts]; comments and blank lines skipped. */
export function firstMntent(text: string): [string, string, string, string] | undefined {
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '' || t.startsWith('#')) continue;
    const f = t.split(/[ \t]+/).map(unescapeMountField);
    if (f.length < 3) return undefined;
    return [f[0], f[1], f[2], f[3] ?? ''];
  }
  return undefined;
}

/** ~/.ecryptfs/ALIAS.conf: LOWER and UPPER, with the real helper's checks and messages. */
async function readAliasConf(home: string, uid: number, alias: string): Promise<{ lower: string; upper: string }> {
  const file = join(home, '.ecryptfs', `${alias}.conf`);
  const bad = (msg: string): never => {
    throw new EcryptfsError('EINVAL', `${msg}\nError reading configuration file`, file);
  };
  const st = await fsp.stat(file).catch(() => undefined);
  if (!st || !st.isFile() || st.uid !== uid) bad('Bad file (it must be a regular file you own)');
  const e = firstMntent(await fsp.readFile(file, 'utf8'));
  if (!e) return bad('no "LOWER UPPER ecryptfs" line');
  if (e[2] !== 'ecryptfs') bad('Bad fs type (the third field must be "ecryptfs")');
  if (e[3] !== '' && e[3] !== 'none') throw new EcryptfsError('EINVAL', 'Mount options are not supported here', file);
  return { lower: e[0], upper: e[1] };
}

/** ~/.ecryptfs/ALIAS.sig: the file key's sig and, for encrypted names, the FNEK's. */
async function readAliasSigs(home: string, alias: string): Promise<string[]> {
  const file = join(home, '.ecryptfs', `${alias}.sig`);
  const text = await fsp.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new EcryptfsError('EINVAL', `cannot read the signature file (${e.code})`, file);
  });
  return parseSigFile(text, file);
}

/**
 * The filesystems a mount point may live on (the real helper's list, LP #1530566): never over
 * /proc or other pseudo filesystems whose contents other programs trust.
 */
const MOUNT_POINT_FS = new Set([
  0x61756673, 0x9123683e, 0x00c36400, 0xff534d42, 0x0000f15f, 0x0000ef53, 0xf2f52010, 0x65735546, 0x01161970, 0x3153464a,
  0x000072b6, 0x0000564c, 0x00006969, 0x00003434, 0x5346544e, 0x794c7630, 0x52654973, 0x73717368, 0x01021994, 0x24051905,
  0x58465342, 0x2fc12fc1,
]);

async function checkMountPoint(upper: string, uid: number): Promise<void> {
  const st = await fsp.stat(upper).catch(() => undefined);
  if (!st) throw new EcryptfsError('EINVAL', 'Cannot chdir into mountpoint.', upper);
  if (!st.isDirectory()) throw new EcryptfsError('EINVAL', 'Mountpoint is not a directory.', upper);
  if (st.uid !== uid) throw new EcryptfsError('EINVAL', 'You do not own that mountpoint.', upper);
  const fs = await fsp.statfs(upper);
  if (!MOUNT_POINT_FS.has(fs.type >>> 0)) {
    throw new EcryptfsError('EINVAL', `Refusing to mount over an unapproved filesystem type: 0x${(fs.type >>> 0).toString(16)}`, upper);
  }
}

export interface Target {
  user: string;
  uid: number;
  home: string;
  alias: string;
  lower: string;
  upper: string;
}

export async function target(alias: string | undefined): Promise<Target> {
  const who = currentAccount();
  const uid = process.getuid?.() ?? who.uid;
  if (alias !== undefined && alias.includes('..')) throw new EcryptfsError('EINVAL', `Invalid alias "${alias}"`);
  if (alias === undefined) {
    const p = privatePaths(who.home);
    return { user: who.name, uid, home: who.home, alias: DEFAULT_ALIAS, lower: p.lower, upper: await mountPointOf(p) };
  }
  return { user: who.name, uid, home: who.home, alias, ...(await readAliasConf(who.home, uid, alias)) };
}

/** mount.ecryptfs_private [ALIAS]: `io` hears why not. */
export async function mountAlias(io: ToolIO, alias: string | undefined): Promise<number> {
  const t = await target(alias);
  const sigs = await readAliasSigs(t.home, t.alias);
  for (const s of sigs) {
    if ((await findKey(s)) === undefined) {
      io.err("Signature not found in user keyring\nPerhaps try the interactive 'ecryptfs-mount-private'\n");
      return 1;
    }
  }
  await checkMountPoint(t.upper, t.uid);
  return mountCounted(t.user, t.alias, t.lower, t.upper, sigs, ['ecryptfs_check_dev_ruid', 'ecryptfs_passthrough=n']);
}

/** umount.ecryptfs_private [-f] [-d] [ALIAS]: `force` (-f) ends every session, `quietIfOpen` (-d) says nothing while sessions stay open. */
export async function umountAlias(io: ToolIO, alias: string | undefined, force: boolean, quietIfOpen: boolean): Promise<number> {
  const t = await target(alias);
  // When unmounting, a missing or unreadable sig file is no reason to stay mounted.
  const sigs = await readAliasSigs(t.home, t.alias).catch(() => [] as string[]);
  await checkMountPoint(t.upper, t.uid);
  const left = await bumpCounter(t.user, force ? 'zero' : -1, t.alias);
  if (left > 0) {
    if (quietIfOpen) return 0;
    io.err('Sessions still open, not unmounting\n');
    return 1;
  }
  // Keys first, as the real helper does, so that nobody can mount again with them meanwhile.
  for (const s of sigs) await unlinkKey(s).catch(() => false);
  if (!(await isMounted(t.upper))) return 1;
  // Lazily, as the real helper does (umount -l): a shell still in the directory does not keep it.
  const rc = await umountEcryptfs(t.upper, { lazy: true });
  if (rc === 0 && t.alias === DEFAULT_ALIAS) await fsp.chmod(t.upper, 0o500).catch(() => undefined);
  return rc;
}
