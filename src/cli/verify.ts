/**
 * ecryptfs-verify [-h|--home] [-p|--private] [-e|--filenames-encrypted]
 * [-n|--filenames-not-encrypted] [-u|--user USER] [--home-dir DIR] [--help]:
 * check a user's encrypted home or Private setup. The checks, their order and their messages are
 * ecryptfs-utils 111's script; after each of its checks come the ones it lacks (owners and modes
 * of ~/.ecryptfs and its files, the sigs' syntax, the wrapped passphrase's format, the lower
 * directory ~/.Private, whether and from where the mount point is mounted, `ecryptfs` and
 * `fuse.ecryptfs` both), and every failure says how to fix it. Like the script, the first failed
 * check ends the run with exit 1; warnings do not.
 * Root with -u USER (ours) first says why a login did not mount: whether PAM runs
 * pam_ecryptfs_ts.so, the session counter and its lock in /dev/shm (another user's, or left root's),
 * and the module's last log lines for USER; the checks then run with the user's uid (root reads no
 * file the user could link elsewhere, and sees through the user's FUSE mount, which root cannot).
 * --home-dir DIR (ours) checks a home at DIR instead of $HOME or USER's passwd entry;
 * ECRYPTFS_ROOT=DIR reads DIR/proc/mounts (both for tests and for checking a copied home).
 */
import { constants as fsc, promises as fsp, type Stats } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { isEcryptfsError } from '../errors.js';
import { parseSigFile } from '../volume/keysource.js';
import { runMain } from './run.js';
import { lookupAccount, privatePaths } from '../home/account.js';
import { counterLockPath, counterPath } from '../home/counter.js';
import { mountsOfType, readMounts } from '../sys/mounts.js';
import { runAsUser, runSync } from '../sys/run.js';

const ECRYPTFS_TYPES = ['ecryptfs', 'fuse.ecryptfs'];

export const USAGE = `
Usage:
ecryptfs-verify [-h|--home] [-p|--private] [-e|--filenames-encrypted] [-n|--filenames-not-encrypted] [-u|--user USER] [--home-dir DIR] [--help]

 -h|--home			True if HOME is correctly configured for
				encryption, False otherwise

 -p|--private			True if a non-HOME directory is correctly
				configured for encryption, False otherwise

 -e|--filenames-encrypted	True if filenames are set for encryption,
				False otherwise

 -n|--filenames-not-encrypted	True if filenames are not encrypted,
				False otherwise

 -u|--user USER			By default, the current user's configuration
				is checked, override with this option

 --home-dir DIR			Check the home directory DIR (for example a
				copy or a backup) instead of the user's

 --help 			This usage information

 Note that options are additive.  ALL checks must pass in order for this
 program to exit 0.  Any failing check will cause this program to exit
 non-zero.

`;

export type Check = 'home' | 'private' | 'encrypted' | 'not-encrypted';

export interface VerifyOptions {
  user: string;
  home: string;
  /** The mount table to read (default /proc/self/mounts). */
  mounts?: string;
  out?(s: string): void;
  err?(s: string): void;
  /** Also say why a login did not mount (root's view: PAM, the session counter, the module's log). */
  login?: { uid: number; pamDir?: string; shm?: string; logs?: string[] };
}

/** Thrown by fail(): the message has been printed already. */
class CheckFailed extends Error {}

function ownerName(uid: number): string {
  const r = runSync('getent', ['passwd', String(uid)], { stderr: 'inherit' });
  return (r.code === 0 && r.stdout.toString('utf8').split(':')[0]) || String(uid);
}

const statOrUndef = (p: string) => fsp.stat(p).catch(() => undefined);
const mode = (st: Stats) => (st.mode & 0o7777).toString(8).padStart(4, '0');

/** The session count in `p`, read without following a link the user may have put there since the lstat ('?' when it is not the user's file). */
async function readCounter(p: string, uid: number): Promise<string> {
  const fh = await fsp.open(p, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK).catch(() => undefined);
  if (!fh) return '?';
  try {
    const st = await fh.stat();
    return st.isFile() && st.uid === uid ? (await fh.readFile('utf8')).trim() : '?';
  } catch {
    return '?';
  } finally {
    await fh.close();
  }
}

/** Where pam_ecryptfs_ts.so logs (the second when /var/log is not writable). */
export const LOGIN_LOGS = ['/var/log/ecryptfs-ts.log', '/run/ecryptfs-ts.log'];

/**
 * Why a login did not mount, from what root can see besides the user's files: the PAM setup, the
 * session counter and its lock in /dev/shm, and the module's last log lines for the user.
 */
export async function loginDiagnostics(user: string, uid: number, o: { info(m: string): void; warn(m: string, fix?: string): void; pamDir?: string; shm?: string; logs?: string[] }): Promise<void> {
  const pamDir = o.pamDir ?? '/etc/pam.d';
  const session = await fsp.readFile(join(pamDir, 'common-session'), 'utf8').catch(() => undefined);
  if (session !== undefined) {
    const active = (m: string) => session.split('\n').some((l) => !l.trimStart().startsWith('#') && l.includes(m));
    if (active('pam_ecryptfs_ts.so')) o.info(`[${pamDir}/common-session] runs pam_ecryptfs_ts.so at login`);
    else o.warn(`[${pamDir}/common-session] does not run pam_ecryptfs_ts.so: logins do not mount${active('pam_ecryptfs.so') ? ' (it runs ecryptfs-utils\' pam_ecryptfs.so, which needs the kernel module)' : ''}`, 'sudo sh src/pam/pam-install.sh in the ecryptfs-ts installation (README "Login (PAM)")');
  }
  const counter = counterPath(user, 'Private', o.shm);
  for (const [p, what] of [[counter, 'session counter'], [counterLockPath(counter), 'session counter lock']]) {
    const st = await fsp.lstat(p).catch(() => undefined);
    if (!st) continue;
    const kind = st.isSymbolicLink() ? 'a symlink' : st.isDirectory() ? 'a directory' : st.isFile() ? 'a file' : 'a special file';
    const ok = st.uid === uid && (what === 'session counter' ? st.isFile() && (st.mode & 0o077) === 0 : st.isDirectory());
    if (ok) o.info(`[${p}] (${what}) is ${user}'s${what === 'session counter' ? `: ${await readCounter(p, uid)} open session(s)` : ''}`);
    else o.warn(`[${p}] (${what}) is ${kind} owned by [${ownerName(st.uid)}], not ${user}'s: ecryptfs-mount-private cannot count sessions (before the fix, a root-owned counter left by ecryptfs-setup-private -u made every mount fail with EACCES)`, `rm -rf ${p}   (the next login makes a new one)`);
  }
  for (const log of o.logs ?? LOGIN_LOGS) {
    const text = await fsp.readFile(log, 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    const mine = text.split('\n').filter((l) => l.split(' ')[2] === user);
    if (!mine.length) continue;
    o.info(`last login steps of ${user} in [${log}]:`);
    for (const l of mine.slice(-6)) o.info(`  ${l}`);
    // The module's own reason, not the line it showed the user ("eCryptfs: ...").
    const last = mine.filter((l) => / (open_session|auth): /.test(l) && !/ (open_session|auth): eCryptfs: /.test(l)).pop() ?? '';
    if (/mount failed|not mounted|time limit/.test(last)) o.warn(`the last login did not mount: ${last.slice(last.indexOf(': ') + 2)}`, 'see the checks below and the fix of the first failing one');
    else if (/unwrap failed|does not unwrap/.test(last)) o.warn('the last login could not unwrap the mount passphrase (password reset by root, or a -w passphrase mistyped)', `as ${user}: ecryptfs-rewrap-passphrase ~/.ecryptfs/wrapped-passphrase (old password, then the login password)`);
  }
}

/** Run the checks; 0 when all pass, 1 at the first failure (after printing it and its fix). */
export async function verify(o: VerifyOptions, checks: Check[]): Promise<number> {
  const out = o.out ?? ((s: string) => process.stdout.write(s));
  const err = o.err ?? ((s: string) => process.stderr.write(s));
  const info = (m: string) => out(`INFO: ${m}\n`);
  const warn = (m: string, fix?: string) => err(`WARNING: ${m}\n${fix ? `  fix: ${fix}\n` : ''}`);
  const fail: (m: string, fix?: string) => never = (m, fix) => {
    err(`ERROR: ${m}\n${fix ? `  fix: ${fix}\n` : ''}ERROR: Configuration invalid\n`);
    throw new CheckFailed(m);
  };
  const { home, user } = o;
  const { dot, sig: sigFile, mnt: mntFile, wrapped } = privatePaths(home);
  // A file of the setup that the user (whose uid the checks run with) cannot read: say whose it is.
  const readable = <T>(p: string, st: Stats, read: Promise<T>): Promise<T> =>
    read.catch((e: NodeJS.ErrnoException) => fail(`[${p}] cannot be read by [${user}] (${e.code}; owned by [${ownerName(st.uid)}], mode ${mode(st)})`, `chown ${user} ${p}; chmod 600 ${p}`));
  const owned = (p: string, st: Stats, fix: string) => {
    const owner = ownerName(st.uid);
    if (owner !== user) fail(`[${p}] is owned by [${owner}], not by [${user}]`, fix);
  };

  const ecryptfsExists = async () => {
    const st = await statOrUndef(dot);
    if (!st?.isDirectory()) fail(`[${dot}] does not exist`, 'run ecryptfs-setup-private (or ecryptfs-migrate-home for an encrypted home)');
    info(`[${dot}] exists`);
    // pam_ecryptfs runs as the user: it cannot read a ~/.ecryptfs it does not own.
    owned(dot, st, `chown -R ${user} ${dot}`);
    if (st.mode & 0o022) fail(`[${dot}] is writable by others (mode ${mode(st)})`, `chmod 700 ${dot}`);
  };
  const sigfileValid = async (): Promise<string[]> => {
    const st = await statOrUndef(sigFile);
    if (!st?.isFile()) fail(`[${sigFile}] does not exist`, 'it holds the sigs of your keys: restore it from a backup, or write them one a line (ecryptfs-add-passphrase --fnek prints both)');
    info(`[${sigFile}] exists`);
    let sigs: string[] = [];
    const text = await readable(sigFile, st, fsp.readFile(sigFile, 'utf8'));
    const lines = (why: string) => fail(`[${sigFile}] does not contain exactly 1 or 2 lines`, `it must hold the file key's sig and, for encrypted names, the FNEK sig, one a line (16 hex digits each): ${why}`);
    try {
      sigs = parseSigFile(text, sigFile);
    } catch (e) {
      if (!isEcryptfsError(e)) throw e;
      lines(e.message);
    }
    // the helper does not read past the second line: more is a file that is not what it seems
    const count = text.split('\n').filter((l) => l.trim() !== '').length;
    if (count > 2) lines(`found ${count} lines`);
    info(`[${sigFile}] contains [${sigs.length}] signatures`);
    owned(sigFile, st, `chown ${user} ${sigFile}`);
    if (st.mode & 0o022) fail(`[${sigFile}] is writable by others (mode ${mode(st)})`, `chmod 600 ${sigFile}`);
    return sigs;
  };
  const readMnt = async () => (await fsp.readFile(mntFile, 'utf8')).replace(/\n+$/, '');
  const mountfileValid = async () => {
    const st = await statOrUndef(mntFile);
    if (!st?.isFile()) fail(`[${mntFile}] does not exist`, `echo ${join(home, 'Private')} > ${mntFile}   (or ${home} for an encrypted home)`);
    info(`[${mntFile}] exists`);
    const m = await readable(mntFile, st, readMnt());
    if (!(await statOrUndef(m))?.isDirectory()) fail(`[${m}] is not a directory`, `mkdir -m 500 ${m}; chown ${user} ${m}`);
    info(`[${m}] is a directory`);
    owned(mntFile, st, `chown ${user} ${mntFile}`);
    if (st.mode & 0o022) fail(`[${mntFile}] is writable by others (mode ${mode(st)})`, `chmod 600 ${mntFile}`);
  };
  // The key material and the lower directory: what a mount needs besides the sig and mnt files.
  const keysAndLower = async (m: string) => {
    const st = await statOrUndef(wrapped);
    if (!st) {
      warn(`[${wrapped}] does not exist: login cannot mount automatically, and ecryptfs-mount-private needs the keys in the keyring already`, 'add them with ecryptfs-add-passphrase --fnek or ecryptfs-manager, or recreate the file with ecryptfs-wrap-passphrase');
    } else {
      const b = await readable(wrapped, st, fsp.readFile(wrapped));
      const hex = (s: Buffer) => /^[0-9a-f]{16}$/.test(s.toString('latin1'));
      const body = (n: number) => b.length > n && (b.length - n) % 16 === 0 && b.length - n <= 64;
      const version = b[0] === 0x3a && b[1] === 2 && hex(b.subarray(10, 26)) && body(26) ? 2 : hex(b.subarray(0, 16)) && body(16) ? 1 : 0;
      if (!version) fail(`[${wrapped}] is not a wrapped-passphrase file (version 1 or 2)`, 'restore it from a backup, or wrap your mount passphrase again with ecryptfs-wrap-passphrase');
      info(`[${wrapped}] is a version ${version} wrapped passphrase`);
      if (version === 1) warn(`[${wrapped}] is version 1 (no salt of its own, easier to attack)`, 'ecryptfs-rewrap-passphrase writes version 2; so does the next login with pam_ecryptfs');
      owned(wrapped, st, `chown ${user} ${wrapped}`);
      if (st.mode & 0o077) fail(`[${wrapped}] is accessible by others (mode ${mode(st)})`, `chmod 600 ${wrapped}`);
    }
    const lower = join(home, '.Private');
    const lst = await statOrUndef(lower);
    if (!lst?.isDirectory()) fail(`[${lower}] does not exist or is not a directory: it holds the encrypted files`, 'restore it (or, for an encrypted home, the symlink to /home/.ecryptfs/USER/.Private) from a backup');
    info(`[${lower}] is a directory`);
    const table = await readMounts(o.mounts).catch(() => []);
    const entry = mountsOfType(table, ECRYPTFS_TYPES).find((e) => e.target === m);
    if (!entry) {
      info(`[${m}] is not mounted`);
      return;
    }
    const src = entry.source;
    info(`[${m}] is mounted (${entry.fstype}) from [${src}]`);
    const real = await fsp.realpath(lower).catch(() => lower);
    if (entry.fstype === 'ecryptfs' && resolve(src) !== lower && resolve(src) !== real) warn(`[${m}] is mounted from [${src}], not from [${lower}]`);
  };
  const ownsMountpoint = async (m: string) => {
    const owner = ownerName((await fsp.stat(m)).uid);
    if (owner !== user) fail(`Invalid owner [${owner}] of mount point [${m}]`, `chown ${user} ${m}`);
    info(`Ownership [${owner}] of mount point [${m}] is correct`);
  };

  if (o.login) await loginDiagnostics(user, o.login.uid, { info, warn, ...o.login });
  try {
    for (const c of checks) {
      await ecryptfsExists();
      const sigs = await sigfileValid();
      if (c === 'home' || c === 'private') {
        await mountfileValid();
        const m = await readMnt();
        if (c === 'home') {
          const auto = join(dot, 'auto-mount');
          if (!(await statOrUndef(auto))?.isFile()) fail(`[${auto}] does not exist`, `touch ${auto}`);
          info(`[${auto}] Automount is set`);
          if (m !== home) fail(`Mount point [${m}] is not the user's home [${home}]`, `echo ${home} > ${mntFile}`);
          info(`Mount point [${m}] is the user's home`);
        } else {
          if (m !== home) info(`Mount point [${m}] is not the user's home [${home}]`);
          else fail(`Mount point [${m}] is the user's home`, `this is an encrypted home: check it with ecryptfs-verify -h`);
          if (!(await statOrUndef(m))?.isDirectory()) fail(`[${m}] is not a valid mount point`, `mkdir -m 500 ${m}`);
          info(`Mount point [${m}] is a valid directory`);
        }
        await ownsMountpoint(m);
        info(`[${join(dot, 'auto-umount')}] Autoumount is ${(await statOrUndef(join(dot, 'auto-umount'))) ? 'set' : 'not set'}`);
        await keysAndLower(m);
      } else if (c === 'encrypted') {
        if (sigs.length === 2) info('Filenames are encrypted');
        else fail('Filenames are not encrypted', `Private.sig holds no FNEK sig: add it as the second line (ecryptfs-add-passphrase --fnek prints it)`);
      } else {
        if (sigs.length === 1) info('Filenames are not encrypted');
        else fail('Filenames are encrypted');
      }
    }
  } catch (e) {
    if (e instanceof CheckFailed) return 1;
    throw e;
  }
  info('Configuration valid');
  return 0;
}

export async function verifyMain(args: string[]): Promise<number> {
  let user = process.env.USER ?? userInfo().username;
  let home = process.env.HOME ?? homedir();
  let homeDir: string | undefined;
  const checks: Check[] = [];
  let loginUid: number | undefined;
  let userGiven = false;
  const invalid = (m: string, fix?: string) => {
    process.stderr.write(`ERROR: ${m}\n${fix ? `  fix: ${fix}\n` : ''}ERROR: Configuration invalid\n`);
    return 1;
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-h' || a === '--home') checks.push('home');
    else if (a === '-p' || a === '--private') checks.push('private');
    else if (a === '-e' || a === '--filenames-encrypted') checks.push('encrypted');
    else if (a === '-n' || a === '--filenames-not-encrypted') checks.push('not-encrypted');
    else if (a === '--home-dir' && i + 1 < args.length) homeDir = args[++i];
    else if ((a === '-u' || a === '--user') && i + 1 < args.length) {
      user = args[++i];
      userGiven = true;
      try {
        home = lookupAccount(user).home;
      } catch {
        home = '';
      }
    } else if (a === '--help') {
      process.stdout.write(USAGE);
      return 1;
    } else {
      // The script loops for ever on an unknown option; say what is wrong instead.
      process.stderr.write(`ERROR: Unknown option [${a}]\n${USAGE}`);
      return 1;
    }
  }
  // Decided once every option is read (--home-dir may come before or after -u).
  if (userGiven) {
    if (homeDir === undefined && !(await statOrUndef(home))?.isDirectory()) {
      // Root cannot look into a home the user has mounted (FUSE, no allow_other): check as the user.
      if (process.getuid?.() === 0 && (await fsp.stat(home).catch((e: NodeJS.ErrnoException) => e.code)) === 'EACCES') return verifyAsUser(user, args);
      return invalid(`Invalid home directory [${home}] of [${user}]`, home ? `the passwd entry of ${user} must name an existing directory (usermod -d DIR ${user}; mkdir DIR)` : `${user} has no passwd entry (getent passwd ${user})`);
    }
    if (process.getuid?.() === 0) {
      // Root reads none of the user's files itself: the user may have linked Private.sig or
      // Private.mnt to a root-only file (whose text the checks would print) or a FIFO. The checks
      // run with the user's uid, which reads what the user's login reads and sees through the
      // user's FUSE mount (root cannot: no allow_other).
      let uid: number;
      try {
        uid = lookupAccount(user).uid;
      } catch {
        return invalid(`[${user}] has no passwd entry`, `getent passwd ${user}`);
      }
      // (the user's run starts in /: a relative --home-dir is made absolute here)
      if (uid !== 0) return verifyAsUser(user, homeDir === undefined ? args : args.map((x, i) => (args[i - 1] === '--home-dir' ? resolve(x) : x)));
      if (homeDir === undefined) loginUid = uid;
    }
  }
  if (homeDir !== undefined) home = resolve(homeDir);
  if (checks.length === 0) return invalid('No checks given');
  const root = process.env.ECRYPTFS_ROOT;
  return verify({ user, home, mounts: root ? join(root, 'proc/mounts') : undefined, login: loginUid === undefined ? undefined : { uid: loginUid } }, checks);
}

/**
 * Root's run for a user: root's own diagnostics (PAM, counter, log), then the same checks run with
 * the user's uid.
 */
async function verifyAsUser(user: string, args: string[]): Promise<number> {
  const a = lookupAccount(user);
  process.stdout.write(`INFO: checking [${a.home}] as ${user} (what ${user}'s login reads; root follows no link of ${user}'s)\n`);
  await loginDiagnostics(user, a.uid, { info: (m) => process.stdout.write(`INFO: ${m}\n`), warn: (m, fix) => process.stderr.write(`WARNING: ${m}\n${fix ? `  fix: ${fix}\n` : ''}`) });
  const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: a.home, USER: user, LOGNAME: user };
  const r = await runAsUser(a, [process.execPath, ...process.execArgv, process.argv[1], ...args], { stdin: 'inherit', stdout: 'inherit', stderr: 'inherit', env, cwd: '/', timeout: 60_000 });
  return r.error ? 1 : r.code;
}

export function verifyToolMain(): void {
  runMain('ecryptfs-verify', () => verifyMain(process.argv.slice(2)));
}
