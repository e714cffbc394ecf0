/**
 * The ~/Private tools of ecryptfs-utils, over our FUSE mount: ecryptfs-setup-private,
 * ecryptfs-mount-private, ecryptfs-umount-private and
 * ecryptfs-insert-wrapped-passphrase-into-keyring. Files and messages follow ecryptfs-utils:
 * ~/.Private (lower), ~/Private (mount point), ~/.ecryptfs/{Private.sig, Private.mnt,
 * wrapped-passphrase, auto-mount, auto-umount}; for an encrypted home (-b) the lower and config
 * directories live in /home/.ecryptfs/USER and the mount point is the home itself. A session
 * counter in /dev/shm lets the last session unmount. Secrets come from prompts, stdin or files,
 * never argv.
 */
import { spawn, spawnSync } from 'node:child_process';
import { promises as fsp, accessSync, constants as fsc } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FileHandle } from 'node:fs/promises';
import { EcryptfsError, isEcryptfsError } from '../errors.js';
import { buildAuthTok } from '../format/authtok.js';
import { deriveKeyAsync, DEFAULT_SALT, FNEK_SALT } from '../format/kdf.js';
import { unwrapPassphrase, wrapPassphrase } from '../format/wrapped.js';
import { addKey, findKey, linkUserIntoSession, unlinkKey } from '../keyring/kernel.js';
import { writeFileAtomic } from '../lower/atomic.js';
import { parseSigFile, readSecretFile } from '../volume/keysource.js';
import { type Account, currentAccount, isMounted, isRoot, lookupAccount, mountPointOf, type PrivatePaths, privatePaths } from '../home/account.js';
import { bumpCounter } from '../home/counter.js';
import { at, holdUserDir } from '../home/held.js';
import { mountCommand, umountCommand } from './mount.js';
import { interactive, secretFrom } from './prompt.js';
import { runMain } from './run.js';

const ECRYPTFS_DIR = '/home/.ecryptfs';
const SHARE = '/usr/share/ecryptfs-utils';
const PW_ATTEMPTS = 3;

/** The key auth toks of a mount passphrase: FNEK first, then the file key (as ecryptfs-add-passphrase --fnek). */
export async function addPrivateKeys(pass: Uint8Array, print = false): Promise<[string, string]> {
  await linkUserIntoSession();
  const file = await deriveKeyAsync(pass, DEFAULT_SALT);
  const fnek = await deriveKeyAsync(pass, FNEK_SALT);
  await addKey(file.sig, buildAuthTok(file.key, file.sig, DEFAULT_SALT));
  await addKey(fnek.sig, buildAuthTok(fnek.key, fnek.sig, FNEK_SALT));
  file.key.fill(0);
  fnek.key.fill(0);
  if (print) process.stdout.write(`Inserted auth tok with sig [${file.sig}] into the user session keyring\nInserted auth tok with sig [${fnek.sig}] into the user session keyring\n`);
  return [file.sig, fnek.sig];
}

export async function insertWrappedMain(args: string[]): Promise<number> {
  const file = args[0] && args[0] !== '-' ? args[0] : privatePaths(currentAccount().home).wrapped;
  if (args.length > 2 || (args.length === 2 && args[1] !== '-')) {
    process.stderr.write('ERROR: a passphrase on the command line is visible to every user (ps); give "-" and the passphrase on stdin\n');
    return 1;
  }
  const login = await secretFrom('Passphrase: ');
  let pass: Buffer;
  try {
    pass = unwrapPassphrase(await fsp.readFile(file), login);
  } catch (e) {
    if (isEcryptfsError(e, 'EWRONGPASS')) {
      process.stderr.write('Error: Unwrapping passphrase and inserting into the user session keyring failed [-5]\nInfo: Check the system log for more information from libecryptfs\n');
      return 1;
    }
    throw e;
  } finally {
    login.fill(0);
  }
  const [sig] = await addPrivateKeys(pass);
  pass.fill(0);
  process.stdout.write(`Inserted auth tok with sig [${sig}] into the user session keyring\n`);
  return 0;
}

/**
 * The options mount.ecryptfs_private mounts with (AES-128, names under the FNEK when Private.sig
 * has a second sig, keys unlinked at unmount), without our helper's questions.
 */
export function privateMountOptions(sigs: string[]): string {
  return [`ecryptfs_sig=${sigs[0]}`, ...(sigs[1] ? [`ecryptfs_fnek_sig=${sigs[1]}`] : []), 'ecryptfs_cipher=aes', 'ecryptfs_key_bytes=16', 'ecryptfs_unlink_sigs', 'no_sig_cache', 'verbosity=0', 'nosuid', 'nodev'].join(',');
}

/** Mount the lower directory on Private.mnt with the keys named in Private.sig (already in @u). */
export async function mountPrivateNow(who: Account, p: PrivatePaths, sigs: string[]): Promise<number> {
  const mp = await mountPointOf(p);
  await bumpCounter(who.name, 1);
  if (await isMounted(mp)) return 0;

  // The mount point is 0500 while unmounted (nothing can be written into it by mistake), but
  // fusermount3 wants write access to it; the mount then covers it.
  const st = await fsp.stat(mp);
  if ((st.mode & 0o200) === 0) await fsp.chmod(mp, (st.mode & 0o777) | 0o700);
  // The helper's "Attempting to mount" lines are not ecryptfs-mount-private's output.
  const rc = await mountCommand({ lower: p.lower, upper: mp, options: privateMountOptions(sigs), foreground: false, quiet: true });
  if (rc !== 0) await bumpCounter(who.name, -1);
  return rc;
}

export async function mountPrivate(who: Account = currentAccount()): Promise<number> {
  const p = privatePaths(who.home);
  const sigText = await fsp.readFile(p.sig, 'utf8').catch(() => undefined);
  const sigs = sigText === undefined ? [] : parseSigFile(sigText, p.sig);
  if (sigs.length && (await Promise.all(sigs.map((s) => findKey(s)))).every((x) => x !== undefined)) return mountPrivateNow(who, p, sigs);
  if (sigText === undefined || !(await fsp.stat(p.wrapped).catch(() => undefined))) {
    process.stderr.write('ERROR: Encrypted private directory is not setup properly\n');
    return 1;
  }
  const independent = await fsp.stat(join(p.dot, 'wrapping-independent')).then(() => true, () => false);
  let ok = false;
  for (let tries = 0; tries < PW_ATTEMPTS && !ok; tries++) {
    const login = await secretFrom(independent ? 'Enter your wrapping passphrase: ' : 'Enter your login passphrase: ');
    try {
      const pass = unwrapPassphrase(await fsp.readFile(p.wrapped), login);
      await addPrivateKeys(pass);
      pass.fill(0);
      ok = true;
    } catch (e) {
      if (!isEcryptfsError(e, 'EWRONGPASS')) throw e;
      process.stdout.write('ERROR: Your passphrase is incorrect\n');
      if (!interactive()) break;
    } finally {
      login.fill(0);
    }
  }
  if (!ok) {
    process.stdout.write('ERROR: Too many incorrect password attempts, exiting\n');
    return 1;
  }
  const rc = await mountPrivateNow(who, p, sigs);
  const mp = await mountPointOf(p);
  if (rc === 0 && process.cwd() === mp) process.stdout.write(`\nINFO: Your private directory has been mounted.\nINFO: To see this change in your current shell:\n  cd ${mp}\n\n`);
  return rc;
}

/** Leave one session; the last one (or -f) unmounts and unlinks the keys. */
export async function umountPrivate(args: string[], who: Account = currentAccount()): Promise<number> {
  const p = privatePaths(who.home);
  const left = await bumpCounter(who.name, args.includes('-f') ? 'zero' : -1);
  if (left > 0) {
    process.stderr.write('Sessions still open, not unmounting\n');
    return 1;
  }
  const mp = await mountPointOf(p);
  if (await isMounted(mp)) {
    const rc = await umountCommand(mp);
    if (rc !== 0) return rc;
    await fsp.chmod(mp, 0o500).catch(() => undefined);
  }
  const sigText = await fsp.readFile(p.sig, 'utf8').catch(() => '');
  for (const s of sigText ? parseSigFile(sigText, p.sig) : []) await unlinkKey(s).catch(() => false);
  return 0;
}

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
  const r = spawnSync(UNIX_CHKPWD, [user, 'nullok'], { input: Buffer.concat([pass, Buffer.from([0])]) });
  return r.status === 0;
}

async function askLoginPassphrase(o: SetupOptions, user: string): Promise<Buffer> {
  const message = o.wrapping ? 'Enter your wrapping passphrase' : 'Enter your login passphrase';
  const canCheck = !o.wrapping && canCheckPasswords();
  for (let tries = 0; tries < PW_ATTEMPTS; tries++) {
    const pass = await secretFrom(`${message} [${user}]: `);
    if (!canCheck) {
      // Nothing can check a wrapping passphrase: have it typed twice.
      const again = await secretFrom(`${message} [${user}] (again): `);
      const same = pass.equals(again);
      again.fill(0);
      if (same && pass.length) return pass;
      process.stdout.write(pass.length ? 'ERROR:  Wrapping passphrases must match\n' : 'ERROR:  You must provide a login passphrase\n');
      pass.fill(0);
      continue;
    }
    if (pass.length === 0) {
      process.stdout.write('ERROR:  You must provide a login passphrase\n');
      continue;
    }
    if (o.noPwCheck) {
      process.stdout.write('INFO: Skipping password verification\n');
      return pass;
    }
    if (checkLoginPassword(user, pass)) return pass;
    process.stdout.write('ERROR:  Your login passphrase is incorrect\n');
    pass.fill(0);
  }
  return fail('Too many incorrect password attempts, exiting');
}

async function askMountPassphrase(): Promise<Buffer | undefined> {
  for (let tries = 0; tries < PW_ATTEMPTS; tries++) {
    const pass = await secretFrom('Enter your mount passphrase [leave blank to generate one]: ');
    if (pass.length === 0) return undefined;
    const again = await secretFrom('Enter your mount passphrase (again): ');
    const same = pass.equals(again);
    again.fill(0);
    if (same) return pass;
    process.stdout.write('ERROR:  Mount passphrases do not match\n');
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
async function setupAsUser(o: SetupOptions, who: Account): Promise<number> {
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
    const login = o.loginPassFile ? await readSecretFile(o.loginPassFile) : (envLogin ?? (await askLoginPassphrase(o, who.name)));
    lines.push(login);
    if (login.length === 0) fail('You must provide a login passphrase');
    if ((o.loginPassFile || envLogin) && !o.wrapping && !o.noPwCheck && checkLoginPassword(who.name, login) === false) fail('Your login passphrase is incorrect');
    // The user's run checks the login password again (unix_chkpwd lets a user check its own),
    // and asks twice where nothing can check the passphrase.
    if (o.wrapping || !canCheckPasswords()) lines.push(login);
    const mount = o.mountPassFile ? await readSecretFile(o.mountPassFile) : (envMount ?? (await askMountPassphrase()));
    if (mount?.length) lines.push(mount, mount);
    else lines.push(Buffer.alloc(0));
    const args = [...(o.noPwCheck ? ['--nopwcheck'] : []), ...(o.fnek ? [] : ['--no-fnek']), ...(o.autoMount ? [] : ['--noautomount']), ...(o.autoUmount ? [] : ['--noautoumount']), ...(o.force ? ['--force'] : []), ...(o.wrapping ? ['--wrapping'] : [])];
    const script = fileURLToPath(new URL('../../../bin/ecryptfs-setup-private.js', import.meta.url));
    const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: who.home, USER: who.name, LOGNAME: who.name, ...(process.env.LANG ? { LANG: process.env.LANG } : {}) };
    const child = spawn('setpriv', [`--reuid=${who.uid}`, `--regid=${who.gid}`, '--init-groups', '--', process.execPath, '--openssl-legacy-provider', script, ...args], { cwd: '/', env, stdio: ['pipe', 'inherit', 'inherit'] });
    const done = new Promise<number>((res) => {
      child.on('error', () => res(127));
      child.on('exit', (c) => res(c ?? 1));
    });
    child.stdin.on('error', () => undefined);
    const input = Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));
    child.stdin.end(input);
    input.fill(0);
    return await done;
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
 * A new encrypted home (-b), mounted by root with root's keys, gets the .ecryptfs and .Private
 * links inside the encrypted view too: once it is mounted, ecryptfs-umount-private finds its
 * config through them. migrate-home keeps it mounted to fill it; adduser's flow unmounts it and
 * the first login mounts it.
 */
async function mountNewHome(who: Account, lower: string, sigs: string[], unmountAfter: boolean): Promise<void> {
  const ecdir = join(ECRYPTFS_DIR, who.name);
  if ((await mountCommand({ lower, upper: who.home, options: privateMountOptions(sigs), foreground: false, quiet: true })) !== 0) fail('Could not mount');
  for (const n of ['.ecryptfs', '.Private']) {
    await fsp.rm(join(who.home, n), { force: true });
    await fsp.symlink(join(ecdir, n), join(who.home, n));
    await fsp.lchown(join(who.home, n), who.uid, who.gid);
  }
  await fsp.chown(who.home, who.uid, who.gid);
  await fsp.chmod(who.home, 0o700);
  if (!unmountAfter) return;
  if ((await umountCommand(who.home)) !== 0) fail(`Could not unmount ${who.home}`);
  for (const s of sigs) await unlinkKey(s).catch(() => false);
}

/** ecryptfs-setup-private's test before it claims success: write random data, unmount, mount again, compare. */
async function selfTest(who: Account, p: PrivatePaths, mountPoint: string, mount: Buffer, sigs: string[]): Promise<void> {
  process.stdout.write('Testing mount/write/umount/read...\n');
  await addPrivateKeys(mount, true);
  if ((await mountPrivateNow(who, p, sigs)) !== 0) fail('Could not mount private ecryptfs directory');
  const probe = join(mountPoint, `ecryptfs.test.${randomBytes(4).toString('hex')}`);
  const data = randomBytes(16000);
  try {
    await fsp.writeFile(probe, data);
    if ((await umountPrivate(['-f'], who)) !== 0) fail('Could not unmount private ecryptfs directory');
    await addPrivateKeys(mount, true);
    if ((await mountPrivateNow(who, p, sigs)) !== 0) fail('Could not mount private ecryptfs directory (2)');
    const back = await fsp.readFile(probe).catch(() => Buffer.alloc(0));
    await fsp.rm(probe, { force: true });
    if (!back.equals(data)) fail('Testing failed.');
  } finally {
    await umountPrivate(['-f'], who).catch(() => 1);
  }
}

export async function setupPrivate(o: SetupOptions): Promise<SetupResult> {
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
    if ((await setupAsUser(o, who)) !== 0) throw new EcryptfsError('EINVAL', '');
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
      for (const n of ['.ecryptfs', '.Private']) {
        await fsp.rm(join(who.home, n), { force: true });
        await fsp.symlink(join(ecdir, n), join(who.home, n));
      }
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
    else if (!o.bootstrap) login = await askLoginPassphrase(o, who.name);
    if (login && login.length === 0) fail('You must provide a login passphrase');
    // A login password from a file is checked like a typed one: a typo would wrap the mount
    // passphrase under a password the user never logs in with.
    if (login && (o.loginPassFile || envLogin) && !o.wrapping && !o.noPwCheck && checkLoginPassword(who.name, login) === false) fail('Your login passphrase is incorrect');
    if (o.mountPassFile) mount = await readSecretFile(o.mountPassFile);
    else if (envMount) mount = envMount;
    else if (!o.bootstrap) mount = await askMountPassphrase();
    if (!mount || mount.length === 0) mount = randomMountPassphrase();

    process.stdout.write('\n************************************************************************\nYOU SHOULD RECORD YOUR MOUNT PASSPHRASE AND STORE IT IN A SAFE LOCATION.\n  ecryptfs-unwrap-passphrase ~/.ecryptfs/wrapped-passphrase\nTHIS WILL BE REQUIRED IF YOU NEED TO RECOVER YOUR DATA AT A LATER TIME.\n************************************************************************\n\n');
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
      else process.stdout.write(`INFO: ${join(who.home, 'Private')} will not be ${off}\n`);
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
    process.stdout.write('\nDone configuring.\n\n');
    if (o.bootstrap) {
      // Mounted before the directories are the user's: the mount is made on what root made.
      await mountNewHome(who, lower, sigs, !o.migrate);
      for (const fh of held) await fh.chown(who.uid, who.gid);
      for (const n of ['.ecryptfs', '.Private']) await fsp.lchown(join(who.home, n), who.uid, who.gid).catch(() => undefined);
      return { account: who, lower, mountPoint, sigs };
    }
    await selfTest(who, p, mountPoint, mount, sigs);
    process.stdout.write('Testing succeeded.\n\nLogout, and log back in to begin using your encrypted directory.\n\n');
    return { account: who, lower, mountPoint, sigs };
  } finally {
    login?.fill(0);
    mount?.fill(0);
    for (const fh of held) await fh.close().catch(() => undefined);
  }
}

const UNDO = `
In the event that you want to remove your eCryptfs Private Directory setup,
you will need to very carefully perform the following actions manually:

 1. Obtain your Private directory mountpoint
   $ PRIVATE=\`cat ~/.ecryptfs/Private.mnt 2>/dev/null || echo $HOME/Private\`
 2. Ensure that you have moved all relevant data out of your $PRIVATE directory
 3. Unmount your encrypted private directory
   $ ecryptfs-umount-private
 4. Make your Private directory writable again
   $ chmod 700 $PRIVATE
 5. Remove $PRIVATE, ~/.Private, ~/.ecryptfs
    Note: THIS IS VERY PERMANENT, BE VERY CAREFUL
   $ rm -rf $PRIVATE ~/.Private ~/.ecryptfs
`;

export const USAGE = `
Usage:

ecryptfs-setup-private [-f|--force] [-w|--wrapping] [--nopwcheck] [-n|--no-fnek]
  [-u|--username USER] [--loginpass-file FILE] [--mountpass-file FILE]
  [--noautomount] [--noautoumount] [-b|--bootstrap] [--undo]

 Secrets are read from the files given, or prompted for (one a line on stdin when it is not a
 terminal). The real tool's -l/--loginpass and -m/--mountpass are refused: they put the
 secret on the command line, where every user can read it (ps, /proc); LOGINPASS and
 MOUNTPASS in the environment are read, as the real tool reads them.
`;

/** Parse ecryptfs-setup-private's options; undefined after printing usage/undo or an error. */
export function parseSetupArgs(args: string[]): SetupOptions | number {
  const o: SetupOptions = { fnek: true, autoMount: true, autoUmount: true, force: false, noPwCheck: false, wrapping: false, bootstrap: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new EcryptfsError('EINVAL', `${a} needs a value`);
      return v;
    };
    if (a === '--loginpass-file') o.loginPassFile = value();
    else if (a === '--mountpass-file') o.mountPassFile = value();
    else if (a === '-u' || a === '--username') o.user = value();
    else if (a === '-n' || a === '--no-fnek') o.fnek = false;
    else if (a === '--noautomount') o.autoMount = false;
    else if (a === '--noautoumount') o.autoUmount = false;
    else if (a === '-f' || a === '--force') o.force = true;
    else if (a === '-w' || a === '--wrapping') o.wrapping = true;
    else if (a === '-b' || a === '--bootstrap') o.bootstrap = true;
    else if (a === '--nopwcheck') o.noPwCheck = true;
    else if (a === '--undo') {
      process.stdout.write(UNDO);
      return 0;
    } else if (a === '-l' || a === '--loginpass' || a === '-m' || a === '--mountpass') {
      process.stderr.write(`ERROR:  ${a} would put a secret on the command line (visible in ps); use --loginpass-file/--mountpass-file or the prompts\n`);
      return 1;
    } else {
      process.stderr.write(USAGE);
      return 1;
    }
  }
  return o;
}

export function setupPrivateMain(): void {
  runMain('ecryptfs-setup-private', async () => {
    const o = parseSetupArgs(process.argv.slice(2));
    if (typeof o === 'number') return o;
    try {
      await setupPrivate(o);
    } catch (e) {
      if (!isEcryptfsError(e)) throw e;
      if (e.message) process.stderr.write(`ERROR:  ${e.message}\n`);
      return 1;
    }
    return 0;
  });
}

export const insertWrappedToolMain = () => runMain('ecryptfs-insert-wrapped-passphrase-into-keyring', () => insertWrappedMain(process.argv.slice(2)));
export const mountPrivateToolMain = () => runMain('ecryptfs-mount-private', () => mountPrivate());
export const umountPrivateToolMain = () => runMain('ecryptfs-umount-private', () => umountPrivate(process.argv.slice(2)));
