/**
 * ecryptfs-setup-private: a new ~/Private (~/.Private on ~/Private, config in ~/.ecryptfs:
 * Private.sig, Private.mnt, wrapped-passphrase, auto-mount, auto-umount) or, with -b, a whole
 * encrypted home (lower and config directories in /home/.ecryptfs/USER, the home the mount
 * point). Files and messages follow ecryptfs-utils; it ends with the real tool's self-test
 * (write, unmount, mount again, compare). Root setting up for a user runs the user's part as
 * the user (setpriv). Secrets come from files, LOGINPASS/MOUNTPASS or `io`, never argv.
 */
import { promises as fsp, accessSync, chmodSync, closeSync, constants as fsc } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FileHandle } from 'node:fs/promises';
import { EcryptfsError } from '../errors.js';
import { wrapPassphrase } from '../format/wrapped.js';
import { unlinkKey } from '../sys/keyring.js';
import { writeFileAtomic } from '../lower/atomic.js';
import { umountEcryptfs } from '../mount/launch.js';
import { readSecretFile } from '../volume/keysource.js';
import { type Account, currentAccount, isMounted, isRoot, lookupAccount, type PrivatePaths, privatePaths } from './account.js';
import { at, holdUserDir, replaceLinkAt } from './held.js';
import { openDirPathTrusted } from '../lower/at.js';
import { AT_EMPTY_PATH, fchownat } from '../lower/sys.js';
import type { ToolIO } from './io.js';
import { runAsUser, runSync } from '../sys/run.js';
import { addPrivateKeys, mountPrivateDir, mountPrivateNow, PW_ATTEMPTS, umountPrivate } from './private-mount.js';

const ECRYPTFS_DIR = '/home/.ecryptfs';
const SHARE = '/usr/share/ecryptfs-utils';

export interface SetupOptions {
  user?: string;
  loginPassFile?: string;
  mountPassFile?: string;
  fnek: boolean;
  autoMount: boolean;
  autoUmount: boolean;
  force: boolean;
  noPwCheck: boolean;
  /** -w: an independent wrapping passphrase instead of the login password. */
  wrapping: boolean;
  /** -b: a whole home (root only), as adduser --encrypt-home and migrate-home set it up. */
  bootstrap: boolean;
  /** Set by ecryptfs-migrate-home: leave the new home mounted for it to fill. */
  migrate?: boolean;
}

export interface SetupResult {
  account: Account;
  lower: string;
  mountPoint: string;
  sigs: string[];
}

/** Files root writes for a user belong to the user; a user writing its own needs no chown. */
const ownerOf = (a: Account) => (isRoot() ? a : undefined);

const fail = (msg: string): never => {
  throw new EcryptfsError('EINVAL', msg);
};

/** "ls -A | count", skipping symlinks for the mount point as the real script does. */
async function nonEmpty(dir: string, countLinks: boolean): Promise<boolean> {
  const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => []);
  return entries.some((e) => countLinks || !e.isSymbolicLink());
}

const UNIX_CHKPWD = '/sbin/unix_chkpwd';
const canCheckPasswords = () => {
  try {
    accessSync(UNIX_CHKPWD, fsc.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** unix_chkpwd (setgid shadow) checks a password without us reading /etc/shadow; stdin only. */
function checkLoginPassword(user: string, pass: Buffer): boolean | undefined {
  if (!canCheckPasswords()) return undefined;
  const input = Buffer.concat([pass, Buffer.from([0])]);
  const r = runSync(UNIX_CHKPWD, [user, 'nullok'], { input });
  input.fill(0);
  return r.code === 0;
}

async function askLoginPassphrase(io: ToolIO, o: SetupOptions, user: string): Promise<Buffer> {
  const message = o.wrapping ? 'Enter your wrapping passphrase' : 'Enter your login passphrase';
  const canCheck = !o.wrapping && canCheckPasswords();
  for (let tries = 0; tries < PW_ATTEMPTS; tries++) {
    const pass = await io.secret(`${message} [${user}]: `);
    if (!canCheck) {
      // Nothing can check a wrapping passphrase: have it typed twice.
      const again = await io.secret(`${message} [${user}] (again): `);
      const same = pass.equals(again);
      again.fill(0);
      if (same && pass.length) return pass;
      io.out(pass.length ? 'ERROR:  Wrapping passphrases must match\n' : 'ERROR:  You must provide a login passphrase\n');
      pass.fill(0);
      continue;
    }
    if (pass.length === 0) {
      io.out('ERROR:  You must provide a login passphrase\n');
      continue;
    }
    if (o.noPwCheck) {
      io.out('INFO: Skipping password verification\n');
      return pass;
    }
    if (checkLoginPassword(user, pass)) return pass;
    io.out('ERROR:  Your login passphrase is incorrect\n');
    pass.fill(0);
  }
  return fail('Too many incorrect password attempts, exiting');
}

async function askMountPassphrase(io: ToolIO): Promise<Buffer | undefined> {
  for (let tries = 0; tries < PW_ATTEMPTS; tries++) {
    const pass = await io.secret('Enter your mount passphrase [leave blank to generate one]: ');
    if (pass.length === 0) return undefined;
    const again = await io.secret('Enter your mount passphrase (again): ');
    const same = pass.equals(again);
    again.fill(0);
    if (same) return pass;
    io.out('ERROR:  Mount passphrases do not match\n');
    pass.fill(0);
  }
  return fail('Too many incorrect passphrase attempts, exiting');
}

/** 16 random bytes as 32 hex digits, as the real random_passphrase gives. */
const randomMountPassphrase = () => Buffer.from(randomBytes(16).toString('hex'));

/**
 * Root setting up ~/Private for a user (-u) works with the user's credentials, as the real tool's
 * per-user steps do: whatever the user has made of ~/.ecryptfs, ~/.Private, ~/Private or
 * Private.mnt, root neither writes, chmods nor mounts through it. Root checks what it can say
 * clearly first (links there are refused with a fix), asks or reads the secrets (the files may
 * be root's), then runs this same command as the user with the secrets on its standard input,
 * one a line, in the order its questions come.
 */
async function setupAsUser(io: ToolIO, o: SetupOptions, who: Account): Promise<number> {
  for (const n of ['.ecryptfs', '.Private', 'Private']) {
    const st = await fsp.lstat(join(who.home, n)).catch(() => undefined);
    const what = join(who.home, n);
    if (st?.isSymbolicLink()) {
      const to = await fsp.readlink(what).catch(() => '?');
      fail(`${what} is a symbolic link (to ${to}). Run as root, ecryptfs-setup-private does not follow links ${who.name} controls: move it away (mv ${what} ${what}.old), or run ecryptfs-setup-private as ${who.name}.`);
    }
    if (st && st.uid !== who.uid) fail(`${what} is owned by uid ${st.uid}, not by ${who.name}; move it away, or chown it to ${who.name}, and run again.`);
    if (st && !st.isDirectory()) fail(`${what} is not a directory; move it away and run again.`);
  }
  const lines: Buffer[] = [];
  try {
    const envLogin = fromEnv('LOGINPASS');
    const envMount = fromEnv('MOUNTPASS');
    const login = o.loginPassFile ? await readSecretFile(o.loginPassFile) : (envLogin ?? (await askLoginPassphrase(io, o, who.name)));
    lines.push(login);
    if (login.length === 0) fail('You must provide a login passphrase');
    if ((o.loginPassFile || envLogin) && !o.wrapping && !o.noPwCheck && checkLoginPassword(who.name, login) === false) fail('Your login passphrase is incorrect');
    // The user's run checks the login password again (unix_chkpwd lets a user check its own),
    // and asks twice where nothing can check the passphrase.
    if (o.wrapping || !canCheckPasswords()) lines.push(login);
    const mount = o.mountPassFile ? await readSecretFile(o.mountPassFile) : (envMount ?? (await askMountPassphrase(io)));
    if (mount?.length) lines.push(mount, mount);
    else lines.push(Buffer.alloc(0));
    const args = [...(o.noPwCheck ? ['--nopwcheck'] : []), ...(o.fnek ? [] : ['--no-fnek']), ...(o.autoMount ? [] : ['--noautomount']), ...(o.autoUmount ? [] : ['--noautoumount']), ...(o.force ? ['--force'] : []), ...(o.wrapping ? ['--wrapping'] : [])];
    const script = fileURLToPath(new URL('../../../bin/ecryptfs-setup-private.js', import.meta.url));
    const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: who.home, USER: who.name, LOGNAME: who.name, ...(process.env.LANG ? { LANG: process.env.LANG } : {}) };
    const input = Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));
    try {
      // Wiped once the child has finished: a pipe write that has not completed may still read it.
      return (await runAsUser(who, [process.execPath, '--openssl-legacy-provider', script, ...args], { input, stdout: 'inherit', stderr: 'inherit', env, cwd: '/' })).code;
    } finally {
      input.fill(0);
    }
  } finally {
    for (const l of lines) l.fill(0);
  }
}

/** LOGINPASS/MOUNTPASS in the environment: the real script's way to run unattended. */
function fromEnv(name: string): Buffer | undefined {
  const v = process.env[name];
  delete process.env[name]; // never passed on to the mount daemon or the user's run
  return v ? Buffer.from(v, 'utf8') : undefined;
}

/** A marker file (auto-mount, ...) in the held config directory: created no-follow, owned by the user. */
async function touchIn(dir: FileHandle, name: string, owner: Account | undefined): Promise<void> {
  const fh = await fsp.open(at(dir.fd, name), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_APPEND | fsc.O_NOFOLLOW | fsc.O_NONBLOCK, 0o644);
  try {
    if (!(await fh.stat()).isFile()) fail(`${name} in the configuration directory is not a regular file; remove it and run again.`);
    if (owner) await fh.chown(owner.uid, owner.gid);
  } finally {
    await fh.close();
  }
}

/**
 * The .ecryptfs and .Private links in `who`'s home to `ecdir`'s, made on the home's own descriptor
 * (walked to following root's links only): no path the user could change is followed, and with
 * `give` the links and the home become the user's through their own descriptors, the home 0700.
 */
function linkHome(who: Account, ecdir: string, give: boolean): void {
  const home = openDirPathTrusted(who.home);
  try {
    for (const n of ['.ecryptfs', '.Private']) replaceLinkAt(home, n, join(ecdir, n), give ? who : undefined);
    if (!give) return;
    // An O_PATH handle: owner through AT_EMPTY_PATH, mode through its /proc link (the same inode).
    fchownat(home, '', who.uid, who.gid, AT_EMPTY_PATH);
    chmodSync(`/proc/self/fd/${home}`, 0o700);
  } finally {
    closeSync(home);
  }
}

/**
 * A new encrypted home (-b), mounted by root with root's keys, gets the .ecryptfs and .Private
 * links inside the encrypted view too: once it is mounted, ecryptfs-umount-private finds its
 * config through them. migrate-home keeps it mounted to fill it; adduser's flow unmounts it and
 * the first login mounts it.
 */
async function mountNewHome(who: Account, lower: string, sigs: string[], unmountAfter: boolean): Promise<void> {
  const ecdir = join(ECRYPTFS_DIR, who.name);
  if ((await mountPrivateDir(lower, who.home, sigs, [], true)) !== 0) fail('Could not mount');
  // The mounted home's: the links and the home itself the user's, mode 0700.
  linkHome(who, ecdir, true);
  if (!unmountAfter) return;
  if ((await umountEcryptfs(who.home)) !== 0) fail(`Could not unmount ${who.home}`);
  for (const s of sigs) await unlinkKey(s).catch(() => false);
}

/** ecryptfs-setup-private's test before it claims success: write random data, unmount, mount again, compare. */
async function selfTest(io: ToolIO, who: Account, p: PrivatePaths, mountPoint: string, mount: Buffer, sigs: string[]): Promise<void> {
  io.out('Testing mount/write/umount/read...\n');
  await addPrivateKeys(mount, io.out);
  if ((await mountPrivateNow(who, p, sigs)) !== 0) fail('Could not mount private ecryptfs directory');
  const probe = join(mountPoint, `ecryptfs.test.${randomBytes(4).toString('hex')}`);
  const data = randomBytes(16000);
  try {
    await fsp.writeFile(probe, data);
    if ((await umountPrivate(io, true, who)) !== 0) fail('Could not unmount private ecryptfs directory');
    await addPrivateKeys(mount, io.out);
    if ((await mountPrivateNow(who, p, sigs)) !== 0) fail('Could not mount private ecryptfs directory (2)');
    const back = await fsp.readFile(probe).catch(() => Buffer.alloc(0));
    await fsp.rm(probe, { force: true });
    if (!back.equals(data)) fail('Testing failed.');
  } finally {
    await umountPrivate(io, true, who).catch(() => 1);
  }
}

export async function setupPrivate(o: SetupOptions, io: ToolIO): Promise<SetupResult> {
  const who = o.user ? lookupAccount(o.user) : currentAccount();
  if (o.bootstrap && !isRoot()) fail('You must be root to bootstrap encrypt a home directory');
  if (!isRoot() && who.uid !== process.getuid?.()) fail(`You must be root to set up an encrypted private directory for ${who.name}`);
  const group = await fsp.readFile('/etc/group', 'utf8').catch(() => '');
  const eg = group.split('\n').find((l) => l.startsWith('ecryptfs:'));
  if (eg) {
    const members = eg.split(':')[3]?.split(',') ?? [];
    if (!members.includes(who.name) && Number(eg.split(':')[2]) !== who.gid) fail('User needs to be a member of ecryptfs group');
  }
  if (!(await fsp.stat(who.home).catch(() => undefined))?.isDirectory()) fail(`User home directory does not exist [${who.home}]`);
  const ecdir = join(ECRYPTFS_DIR, who.name);
  const p = privatePaths(who.home);
  const mountPoint = o.bootstrap ? who.home : join(who.home, 'Private');
  const lower = o.bootstrap ? join(ecdir, '.Private') : p.lower;
  if (isRoot() && !o.bootstrap && who.uid !== 0) {
    // The user's run has said what went wrong.
    if ((await setupAsUser(io, o, who)) !== 0) throw new EcryptfsError('EINVAL', '');
    return { account: who, lower, mountPoint, sigs: [] };
  }
  const held: FileHandle[] = [];
  const hold = async (fh: Promise<FileHandle>) => {
    held.push(await fh);
    return held[held.length - 1];
  };
  let login: Buffer | undefined;
  let mount: Buffer | undefined;
  try {
    let dot: FileHandle;
    let lowerDir: string;
    if (o.bootstrap) {
      // The config and lower directories live outside the home, linked into it. Root works in
      // them through descriptors opened without following links: /home/.ecryptfs/USER may be
      // the user's already (an earlier setup), and the links in the home are the user's to change.
      // /home/.ecryptfs itself is 0755 as ecryptfs-utils makes it (a recursive mkdir would make it 0700: no login could reach its own).
      await fsp.mkdir(ECRYPTFS_DIR, { mode: 0o755 }).catch(() => undefined);
      const e = await hold(holdUserDir(undefined, ecdir, ecdir, who));
      dot = await hold(holdUserDir(e, '.ecryptfs', join(ecdir, '.ecryptfs'), who));
      lowerDir = `/proc/self/fd/${(await hold(holdUserDir(e, '.Private', lower, who))).fd}`;
      linkHome(who, ecdir, false);
    } else {
      // A user's own run (or root's for itself): its own links are its own business.
      await fsp.mkdir(p.dot, { recursive: true, mode: 0o700 });
      dot = await hold(fsp.open(p.dot, fsc.O_RDONLY | fsc.O_DIRECTORY));
      lowerDir = lower;
    }
    const inDot = (f: string) => at(dot.fd, f) as string;
    const nonEmptyFile = async (f: string) => ((await fsp.lstat(inDot(f)).catch(() => undefined))?.size ?? 0) > 0;
    if (!o.force && (await nonEmptyFile('wrapped-passphrase'))) fail('wrapped-passphrase file already exists, use --force to overwrite.');
    if (!o.force && (await nonEmptyFile('Private.sig'))) fail('Private.sig file already exists, use --force to overwrite.');
    for (const d of [mountPoint, lower]) if (await isMounted(d)) fail(`[${d}] is already mounted`);
    if (await nonEmpty(mountPoint, false)) {
      // In bootstrap mode the home holds the two links we just made (symlinks are skipped).
      fail(`${mountPoint} must be empty before proceeding`);
    }
    if (await nonEmpty(lowerDir, true)) fail(`${lower} must be empty before proceeding`);

    const envLogin = fromEnv('LOGINPASS');
    const envMount = fromEnv('MOUNTPASS');
    if (o.loginPassFile) login = await readSecretFile(o.loginPassFile);
    else if (envLogin) login = envLogin;
    // Bootstrap without a login password (the seed's migrate-home): the first login wraps it.
    else if (!o.bootstrap) login = await askLoginPassphrase(io, o, who.name);
    if (login && login.length === 0) fail('You must provide a login passphrase');
    // A login password from a file is checked like a typed one: a typo would wrap the mount
    // passphrase under a password the user never logs in with.
    if (login && (o.loginPassFile || envLogin) && !o.wrapping && !o.noPwCheck && checkLoginPassword(who.name, login) === false) fail('Your login passphrase is incorrect');
    if (o.mountPassFile) mount = await readSecretFile(o.mountPassFile);
    else if (envMount) mount = envMount;
    else if (!o.bootstrap) mount = await askMountPassphrase(io);
    if (!mount || mount.length === 0) mount = randomMountPassphrase();

    io.out('\n************************************************************************\nYOU SHOULD RECORD YOUR MOUNT PASSPHRASE AND STORE IT IN A SAFE LOCATION.\n  ecryptfs-unwrap-passphrase ~/.ecryptfs/wrapped-passphrase\nTHIS WILL BE REQUIRED IF YOU NEED TO RECOVER YOUR DATA AT A LATER TIME.\n************************************************************************\n\n');
    if (!o.bootstrap) {
      await fsp.mkdir(lower, { recursive: true, mode: 0o700 });
      await fsp.mkdir(mountPoint, { recursive: true, mode: 0o700 });
    }
    // The help links only where ecryptfs-utils' share files are installed.
    for (const [src, name] of [['ecryptfs-mount-private.txt', 'README.txt'], ['ecryptfs-mount-private.desktop', 'Access-Your-Private-Data.desktop']]) {
      if (!(await fsp.stat(join(SHARE, src)).catch(() => undefined))) continue;
      await fsp.rm(join(mountPoint, name), { force: true });
      await fsp.symlink(join(SHARE, src), join(mountPoint, name));
    }
    await fsp.chmod(mountPoint, 0o500);
    const owner = ownerOf(who);
    const marker = async (f: string, on: boolean, off: string) => {
      if (on) await touchIn(dot, f, owner);
      else io.out(`INFO: ${join(who.home, 'Private')} will not be ${off}\n`);
    };
    await marker('auto-mount', o.autoMount, 'mounted on login');
    await marker('auto-umount', o.autoUmount, 'unmounted on logout');
    if (o.wrapping) await touchIn(dot, 'wrapping-independent', owner);
    else await fsp.rm(inDot('wrapping-independent'), { force: true });
    // Keep what an earlier setup left (never destroy a wrapped passphrase).
    const stamp = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
    for (const f of ['wrapped-passphrase', 'Private.sig']) if (await nonEmptyFile(f)) await fsp.rename(inDot(f), inDot(`${f}.${stamp}`));
    if (!login) {
      // Bootstrap for adduser: PAM wraps this with the first password the user sets; until then
      // only its 0400 mode protects it, so it lives in RAM (/dev/shm), as in ecryptfs-utils.
      await writeFileAtomic(`/dev/shm/.ecryptfs-${who.name}`, mount, { mode: 0o400, owner });
    } else await writeFileAtomic(inDot('wrapped-passphrase'), wrapPassphrase(mount, login), { owner });
    const [sig, fnekSig] = await addPrivateKeys(mount);
    const sigs = o.fnek ? [sig, fnekSig] : [sig];
    await writeFileAtomic(inDot('Private.sig'), sigs.map((s) => `${s}\n`).join(''), { owner });
    await writeFileAtomic(inDot('Private.mnt'), `${mountPoint}\n`, { owner });
    io.out('\nDone configuring.\n\n');
    if (o.bootstrap) {
      // Mounted before the directories are the user's: the mount is made on what root made.
      await mountNewHome(who, lower, sigs, !o.migrate);
      for (const fh of held) await fh.chown(who.uid, who.gid);
      for (const n of ['.ecryptfs', '.Private']) await fsp.lchown(join(who.home, n), who.uid, who.gid).catch(() => undefined);
      return { account: who, lower, mountPoint, sigs };
    }
    await selfTest(io, who, p, mountPoint, mount, sigs);
    io.out('Testing succeeded.\n\nLogout, and log back in to begin using your encrypted directory.\n\n');
    return { account: who, lower, mountPoint, sigs };
  } finally {
    login?.fill(0);
    mount?.fill(0);
    for (const fh of held) await fh.close().catch(() => undefined);
  }
}

