/**
 * The ~/Private tools of ecryptfs-utils, over our FUSE mount: ecryptfs-setup-private,
 * ecryptfs-mount-private, ecryptfs-umount-private and
 * ecryptfs-insert-wrapped-passphrase-into-keyring. Files and messages follow ecryptfs-utils:
 * ~/.Private (lower), ~/Private (mount point), ~/.ecryptfs/{Private.sig, Private.mnt,
 * wrapped-passphrase, auto-mount, auto-umount}; a session counter in /dev/shm so that the last
 * session to leave unmounts. Secrets come from prompts, stdin or files, never argv.
 */
import { promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { EcryptfsError, isEcryptfsError } from '../errors.js';
import { buildAuthTok } from '../format/authtok.js';
import { deriveKeyAsync, DEFAULT_SALT, FNEK_SALT } from '../format/kdf.js';
import { unwrapPassphrase, wrapPassphrase } from '../format/wrapped.js';
import { addKey, findKey, linkUserIntoSession, unlinkKey } from '../keyring/kernel.js';
import { parseSigFile, readSecretFile } from '../volume/keysource.js';
import { mountCommand, umountCommand } from './mount.js';
import { askSecret, interactive } from './prompt.js';
import { runMain } from './run.js';

function user(): string {
  return process.env.USER ?? userInfo().username;
}

function paths(home = process.env.HOME ?? homedir()) {
  const dot = join(home, '.ecryptfs');
  return { home, dot, lower: join(home, '.Private'), sig: join(dot, 'Private.sig'), mnt: join(dot, 'Private.mnt'), wrapped: join(dot, 'wrapped-passphrase') };
}

/** Read one secret: a file, stdin (one line, or up to a NUL as ecryptfs-mount-private pipes), or a prompt. */
async function secret(prompt: string, file?: string): Promise<Buffer> {
  if (file) return readSecretFile(file);
  if (interactive()) return askSecret(prompt, process.stdout);
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const all = Buffer.concat(chunks);
  let end = all.findIndex((b) => b === 0x0a || b === 0x00);
  if (end < 0) end = all.length;
  const out = Buffer.from(all.subarray(0, end));
  all.fill(0);
  return out;
}

/** Add the FNEK key, then the file key, of a mount passphrase to @u; returns [file sig, fnek sig]. */
export async function addPrivateKeys(pass: Uint8Array): Promise<[string, string]> {
  await linkUserIntoSession();
  const fnek = await deriveKeyAsync(pass, FNEK_SALT);
  const file = await deriveKeyAsync(pass, DEFAULT_SALT);
  await addKey(fnek.sig, buildAuthTok(fnek.key, fnek.sig, FNEK_SALT));
  await addKey(file.sig, buildAuthTok(file.key, file.sig, DEFAULT_SALT));
  fnek.key.fill(0);
  file.key.fill(0);
  return [file.sig, fnek.sig];
}

export async function insertWrappedMain(args: string[]): Promise<number> {
  const file = args[0] && args[0] !== '-' ? args[0] : paths().wrapped;
  const login = await secret('Passphrase: ');
  let pass: Buffer;
  try {
    pass = unwrapPassphrase(await fsp.readFile(file), login);
  } catch (e) {
    if (isEcryptfsError(e, 'EWRONGPASS')) {
      process.stderr.write('Error: Unwrapping passphrase and inserting into the user session keyring failed [-5]\nInfo: the wrapping passphrase does not match the wrapped-passphrase file\n');
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

// ---- the session counter (/dev/shm/ecryptfs-USER-Private) ----

const counterFile = () => join('/dev/shm', `ecryptfs-${user()}-Private`);

/** Change the counter under a lock (mkdir is atomic); returns the new value. */
export async function bumpCounter(delta: number | 'zero'): Promise<number> {
  const lock = `${counterFile()}.lock`;
  for (let i = 0; ; i++) {
    try {
      await fsp.mkdir(lock);
      break;
    } catch {
      if (i > 200) await fsp.rmdir(lock).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
  try {
    const cur = Number((await fsp.readFile(counterFile(), 'utf8').catch(() => '0')).trim()) || 0;
    const next = delta === 'zero' ? 0 : Math.max(0, cur + delta);
    await fsp.writeFile(counterFile(), `${next}\n`, { mode: 0o600 });
    return next;
  } finally {
    await fsp.rmdir(lock).catch(() => undefined);
  }
}

async function mountPoint(p: ReturnType<typeof paths>): Promise<string> {
  return (await fsp.readFile(p.mnt, 'utf8').catch(() => join(p.home, 'Private'))).trim();
}

async function isMounted(mp: string): Promise<boolean> {
  const m = await fsp.readFile('/proc/mounts', 'utf8');
  return m.split('\n').some((l) => l.split(' ')[1] === mp);
}

/** Mount ~/.Private on Private.mnt with the keys named in Private.sig (already in @u). */
async function mountPrivateNow(p: ReturnType<typeof paths>, sigs: string[]): Promise<number> {
  const mp = await mountPoint(p);
  await bumpCounter(1);
  if (await isMounted(mp)) return 0;
  const opts = [`ecryptfs_sig=${sigs[0]}`, ...(sigs[1] ? [`ecryptfs_fnek_sig=${sigs[1]}`] : []), 'ecryptfs_cipher=aes', 'ecryptfs_key_bytes=16', 'ecryptfs_unlink_sigs', 'no_sig_cache', 'verbosity=0', 'nosuid', 'nodev'];
  // The mount point is 0500 while unmounted (nothing can be written into it by mistake), but
  // fusermount3 wants the user to have write access to it; the mount then covers it.
  const st = await fsp.stat(mp);
  if ((st.mode & 0o200) === 0) await fsp.chmod(mp, (st.mode & 0o777) | 0o700);
  // The helper's "Attempting to mount" lines are not ecryptfs-mount-private's output.
  return mountCommand({ lower: p.lower, upper: mp, options: opts.join(','), foreground: false, quiet: true });
}

export async function mountPrivateMain(): Promise<number> {
  const p = paths();
  const sigText = await fsp.readFile(p.sig, 'utf8').catch(() => undefined);
  if (sigText === undefined || !(await fsp.stat(p.wrapped).catch(() => undefined))) {
    process.stderr.write('ERROR: Encrypted private directory is not setup properly\n');
    return 1;
  }
  const sigs = parseSigFile(sigText, p.sig);
  const present = await Promise.all(sigs.map((s) => findKey(s)));
  if (present.some((x) => x === undefined)) {
    const independent = await fsp.stat(join(p.dot, 'wrapping-independent')).then(() => true, () => false);
    let ok = false;
    for (let tries = 0; tries < 3 && !ok; tries++) {
      const login = await secret(independent ? 'Enter your wrapping passphrase: ' : 'Enter your login passphrase: ');
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
  }
  return mountPrivateNow(p, sigs);
}

export async function umountPrivateMain(args: string[]): Promise<number> {
  const p = paths();
  const left = await bumpCounter(args.includes('-f') ? 'zero' : -1);
  if (left > 0) {
    process.stderr.write('Sessions still open, not unmounting\n');
    return 1;
  }
  const mp = await mountPoint(p);
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
  loginPassFile?: string;
  mountPassFile?: string;
  fnek: boolean;
  autoMount: boolean;
  autoUmount: boolean;
  force: boolean;
}

export async function setupPrivate(o: SetupOptions): Promise<number> {
  const p = paths();
  const mp = join(p.home, 'Private');
  for (const f of [p.wrapped, p.sig]) {
    if (!o.force && (await fsp.stat(f).catch(() => undefined))) {
      throw new EcryptfsError('EINVAL', `[${f}] exists: an encrypted private directory is already set up (use --force to replace it; the old files are backed up)`);
    }
  }
  if (await isMounted(mp)) throw new EcryptfsError('EINVAL', `[${mp}] is mounted; unmount it first`);
  const login = await secret(`Enter your login passphrase [${user()}]: `, o.loginPassFile);
  if (login.length === 0) throw new EcryptfsError('EINVAL', 'You must provide a login passphrase');
  let mount = await secret('Enter your mount passphrase [leave blank to generate one]: ', o.mountPassFile);
  if (mount.length === 0) mount = Buffer.from(randomBytes(16).toString('hex'));
  try {
    await fsp.mkdir(p.dot, { recursive: true, mode: 0o700 });
    await fsp.mkdir(p.lower, { recursive: true, mode: 0o700 });
    await fsp.mkdir(mp, { recursive: true, mode: 0o700 });
    process.stdout.write('\n************************************************************************\nYOU SHOULD RECORD YOUR MOUNT PASSPHRASE AND STORE IT IN A SAFE LOCATION.\n  ecryptfs-unwrap-passphrase ~/.ecryptfs/wrapped-passphrase\nTHIS WILL BE REQUIRED IF YOU NEED TO RECOVER YOUR DATA AT A LATER TIME.\n************************************************************************\n\n');
    if (o.autoMount) await fsp.writeFile(join(p.dot, 'auto-mount'), '', { mode: 0o644 });
    else process.stdout.write(`INFO: ${mp} will not be mounted on login\n`);
    if (o.autoUmount) await fsp.writeFile(join(p.dot, 'auto-umount'), '', { mode: 0o644 });
    else process.stdout.write(`INFO: ${mp} will not be unmounted on logout\n`);
    const stamp = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
    for (const f of [p.wrapped, p.sig]) await fsp.rename(f, `${f}.${stamp}`).catch(() => undefined);
    const writeKeyFile = async (f: string, data: Buffer | string) => {
      const tmp = `${f}.tmp-${process.pid}`;
      await fsp.writeFile(tmp, data, { mode: 0o600 });
      await fsp.rename(tmp, f);
    };
    await writeKeyFile(p.wrapped, wrapPassphrase(mount, login));
    const [sig, fnekSig] = await addPrivateKeys(mount);
    await writeKeyFile(p.sig, o.fnek ? `${sig}\n${fnekSig}\n` : `${sig}\n`);
    await writeKeyFile(p.mnt, `${mp}\n`);
    process.stdout.write('\nDone configuring.\n\n');
    // Test the mount before reporting success: write, unmount, mount again, compare.
    process.stdout.write('Testing mount/write/umount/read...\n');
    const sigs = o.fnek ? [sig, fnekSig] : [sig];
    const data = randomBytes(16000).toString('hex');
    if ((await mountPrivateNow(p, sigs)) !== 0) throw new EcryptfsError('EIO', 'Could not mount the private directory for testing');
    const probe = join(mp, `.ecryptfs-setup-test-${process.pid}`);
    await fsp.writeFile(probe, data);
    await umountPrivateMain(['-f']);
    await addPrivateKeys(mount);
    if ((await mountPrivateNow(p, sigs)) !== 0) throw new EcryptfsError('EIO', 'Could not mount the private directory again for testing');
    const back = await fsp.readFile(probe, 'utf8').catch(() => '');
    await fsp.rm(probe, { force: true });
    await umountPrivateMain(['-f']);
    if (back !== data) throw new EcryptfsError('EIO', 'Testing failed: what was written could not be read back');
    await fsp.chmod(mp, 0o500);
    process.stdout.write('Testing succeeded.\n\nLogout, and log back in to begin using your encrypted directory.\n\n');
    return 0;
  } finally {
    login.fill(0);
    mount.fill(0);
  }
}

export function setupPrivateMain(): void {
  const args = process.argv.slice(2);
  const o: SetupOptions = { fnek: true, autoMount: true, autoUmount: true, force: false };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--loginpass-file') o.loginPassFile = args[++i];
    else if (a === '--mountpass-file') o.mountPassFile = args[++i];
    else if (a === '-n' || a === '--no-fnek') o.fnek = false;
    else if (a === '--noautomount') o.autoMount = false;
    else if (a === '--noautoumount') o.autoUmount = false;
    else if (a === '-f' || a === '--force') o.force = true;
    else if (a === '--nopwcheck') continue;
    else if (a === '-l' || a === '--loginpass' || a === '-m' || a === '--mountpass') {
      process.stderr.write(`ERROR: ${a} would put a secret on the command line (visible in ps); use --loginpass-file/--mountpass-file or the prompts\n`);
      process.exitCode = 1;
      return;
    } else {
      process.stderr.write(`ERROR: option ${a} is not supported\n`);
      process.exitCode = 1;
      return;
    }
  }
  runMain('ecryptfs-setup-private', () => setupPrivate(o));
}

export const insertWrappedToolMain = () => runMain('ecryptfs-insert-wrapped-passphrase-into-keyring', () => insertWrappedMain(process.argv.slice(2)));
export const mountPrivateToolMain = () => runMain('ecryptfs-mount-private', mountPrivateMain);
export const umountPrivateToolMain = () => runMain('ecryptfs-umount-private', () => umountPrivateMain(process.argv.slice(2)));
