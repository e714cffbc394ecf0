/**
 * ecryptfs-verify [-h|--home] [-p|--private] [-e|--filenames-encrypted] [-n|--filenames-not-encrypted]
 * [-u|--user USER]: check a user's encrypted home or Private setup with ecryptfs-utils' checks and
 * messages, plus what the script does not check (file modes, the sigs' syntax, the wrapped
 * passphrase's format, whether the lower directory is mounted, FUSE mounts included), each
 * failure saying how to fix it. Exit 1 at the first failed check, as the script does.
 */
import { promises as fsp } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { parseSigFile } from '../volume/keysource.js';
import { runMain } from './run.js';

class CheckFailed extends Error {}

const info = (m: string) => process.stdout.write(`INFO: ${m}\n`);
function fail(m: string, fix?: string): never {
  process.stderr.write(`ERROR: ${m}\n`);
  if (fix) process.stderr.write(`  fix: ${fix}\n`);
  process.stderr.write('ERROR: Configuration invalid\n');
  throw new CheckFailed(m);
}

function ownerName(uid: number): string {
  try {
    return execFileSync('getent', ['passwd', String(uid)], { encoding: 'utf8' }).split(':')[0];
  } catch {
    return String(uid);
  }
}

async function exists(p: string) {
  return fsp.stat(p).catch(() => undefined);
}

export interface VerifyTarget {
  user: string;
  home: string;
}

export async function verify(t: VerifyTarget, checks: Set<string>): Promise<void> {
  const dot = join(t.home, '.ecryptfs');
  const sigFile = join(dot, 'Private.sig');
  const mntFile = join(dot, 'Private.mnt');
  const base = async () => {
    if (!(await exists(dot))?.isDirectory()) fail(`[${dot}] does not exist`, 'run ecryptfs-setup-private');
    info(`[${dot}] exists`);
    if (!(await exists(sigFile))?.isFile()) fail(`[${sigFile}] does not exist`, 'run ecryptfs-setup-private --force to recreate it');
    info(`[${sigFile}] exists`);
    let sigs: string[];
    try {
      sigs = parseSigFile(await fsp.readFile(sigFile, 'utf8'), sigFile);
    } catch (e) {
      fail(`[${sigFile}] does not contain exactly 1 or 2 lines`, (e as Error).message);
    }
    info(`[${sigFile}] contains [${sigs.length}] signatures`);
    if (!(await exists(mntFile))?.isFile()) fail(`[${mntFile}] does not exist`, `echo ${join(t.home, 'Private')} > ${mntFile}`);
    info(`[${mntFile}] exists`);
    const m = (await fsp.readFile(mntFile, 'utf8')).trim();
    if (!(await exists(m))?.isDirectory()) fail(`[${m}] is not a directory`, `mkdir -m 700 ${m}`);
    info(`[${m}] is a directory`);
    for (const f of ['Private.sig', 'Private.mnt', 'wrapped-passphrase']) {
      const st = await exists(join(dot, f));
      if (st && (st.mode & 0o077) !== 0) fail(`[${join(dot, f)}] is readable by others (mode ${(st.mode & 0o777).toString(8)})`, `chmod 600 ${join(dot, f)}`);
    }
    const wp = await fsp.readFile(join(dot, 'wrapped-passphrase')).catch(() => undefined);
    if (wp) {
      const v2 = wp[0] === 0x3a && wp[1] === 2 && /^[0-9a-f]{16}$/.test(wp.subarray(10, 26).toString('latin1'));
      const v1 = /^[0-9a-f]{16}$/.test(wp.subarray(0, 16).toString('latin1'));
      if (!v1 && !v2) fail(`[${join(dot, 'wrapped-passphrase')}] is not a wrapped-passphrase file`, 'restore it from a backup, or re-wrap your mount passphrase with ecryptfs-wrap-passphrase');
      info(`[${join(dot, 'wrapped-passphrase')}] is a version ${v2 ? 2 : 1} wrapped passphrase`);
    }
    const mounts = await fsp.readFile('/proc/mounts', 'utf8');
    const mounted = mounts.split('\n').some((l) => {
      const f = l.split(' ');
      return f[1] === m && (f[2] === 'ecryptfs' || f[2] === 'fuse.ecryptfs');
    });
    info(`[${m}] is ${mounted ? '' : 'not '}mounted`);
    return { sigs, m };
  };
  const owns = async (m: string) => {
    const owner = ownerName((await fsp.stat(m)).uid);
    if (owner !== t.user) fail(`Invalid owner [${owner}] of mount point [${m}]`, `chown ${t.user} ${m}`);
    info(`Ownership [${owner}] of mount point [${m}] is correct`);
  };
  for (const c of checks) {
    const { sigs, m } = await base();
    if (c === 'home') {
      if (!(await exists(join(dot, 'auto-mount')))) fail(`[${join(dot, 'auto-mount')}] does not exist`, `touch ${join(dot, 'auto-mount')}`);
      info(`[${join(dot, 'auto-mount')}] Automount is set`);
      if (m !== t.home) fail(`Mount point [${m}] is not the user's home [${t.home}]`);
      info(`Mount point [${m}] is the user's home`);
      await owns(m);
    } else if (c === 'private') {
      if (m === t.home) fail(`Mount point [${m}] is the user's home`);
      info(`Mount point [${m}] is not the user's home [${t.home}]`);
      info(`Mount point [${m}] is a valid directory`);
      await owns(m);
    } else if (c === 'encrypted') {
      if (sigs.length !== 2) fail('Filenames are not encrypted');
      info('Filenames are encrypted');
    } else if (c === 'not-encrypted') {
      if (sigs.length !== 1) fail('Filenames are encrypted');
      info('Filenames are not encrypted');
    }
  }
}

export async function verifyMain(args: string[]): Promise<number> {
  let user = process.env.USER ?? userInfo().username;
  let home = process.env.HOME ?? homedir();
  const checks = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-h' || a === '--home') checks.add('home');
    else if (a === '-p' || a === '--private') checks.add('private');
    else if (a === '-e' || a === '--filenames-encrypted') checks.add('encrypted');
    else if (a === '-n' || a === '--filenames-not-encrypted') checks.add('not-encrypted');
    else if (a === '-u' || a === '--user') {
      user = args[++i] ?? '';
      try {
        home = execFileSync('getent', ['passwd', user], { encoding: 'utf8' }).split(':')[5];
      } catch {
        home = '';
      }
      if (!home || !(await exists(home))?.isDirectory()) {
        process.stderr.write(`ERROR: Invalid home directory [${home}] of [${user}]\nERROR: Configuration invalid\n`);
        return 1;
      }
    } else if (a === '--help') {
      process.stdout.write('Usage:\necryptfs-verify [-h|--home] [-p|--private] [-e|--filenames-encrypted] [-n|--filenames-not-encrypted] [-u|--user USER] [--help]\n');
      return 1;
    }
  }
  if (checks.size === 0) {
    process.stderr.write('ERROR: No checks given\nERROR: Configuration invalid\n');
    return 1;
  }
  try {
    await verify({ user, home }, checks);
    info('Configuration valid');
    return 0;
  } catch (e) {
    if (e instanceof CheckFailed) return 1;
    throw e;
  }
}

export function verifyToolMain(): void {
  runMain('ecryptfs-verify', () => verifyMain(process.argv.slice(2)));
}
