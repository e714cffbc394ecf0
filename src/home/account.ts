/**
 * Who the ~/Private and encrypted-home tools work for: a passwd entry, the paths ecryptfs-utils
 * uses for it.
 */
import { promises as fsp } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { EcryptfsError } from '../errors.js';
import { runSync } from '../sys/run.js';

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** The passwd entry of `name` (getent, so NSS/LDAP users work as in the real scripts). */
export function lookupAccount(name: string): Account {
  const r = runSync('getent', ['passwd', name], { stderr: 'inherit' });
  if (r.code !== 0) throw new EcryptfsError('EINVAL', `User does not exist [${name}]`);
  const line = r.stdout.toString('utf8').split('\n')[0];
  const f = line.split(':');
  return { name: f[0], uid: Number(f[2]), gid: Number(f[3]), home: f[5] };
}

/** The user we run for: SUDO_USER (as the real script), else USER, else the process owner. */
export function currentAccount(): Account {
  const name = process.env.SUDO_USER || process.env.USER || userInfo().username;
  const a = lookupAccount(name);
  // Tests and PAM run us with HOME set for the user; honour it as the real scripts do.
  if (a.uid === process.getuid?.() && process.env.HOME) a.home = process.env.HOME;
  return a;
}

export const isRoot = () => process.getuid?.() === 0;

export interface PrivatePaths {
  home: string;
  dot: string;
  lower: string;
  sig: string;
  mnt: string;
  wrapped: string;
}

export function privatePaths(home: string): PrivatePaths {
  const dot = join(home, '.ecryptfs');
  return { home, dot, lower: join(home, '.Private'), sig: join(dot, 'Private.sig'), mnt: join(dot, 'Private.mnt'), wrapped: join(dot, 'wrapped-passphrase') };
}

/** The mount point named in Private.mnt (default ~/Private). */
export async function mountPointOf(p: PrivatePaths): Promise<string> {
  return (await fsp.readFile(p.mnt, 'utf8').catch(() => join(p.home, 'Private'))).trim();
}

/** Is something mounted on `mp`? */
export { isMountPoint as isMounted } from '../sys/mounts.js';
