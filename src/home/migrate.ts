/**
 * ecryptfs-migrate-home -u USER (root): turn a clear home into an encrypted one, with
 * ecryptfs-utils' checks and messages. The clear home is moved to /home/USER.XXXXXXXX (the
 * backup), an encrypted home is set up in bootstrap mode and mounted, every file is copied
 * through the mount (modes, owners, times, symlinks, hard links, holes) and then verified
 * against the backup. A state file records where a migration is, so running the command again
 * after an interruption resumes it instead of starting over on a half-moved home.
 */
import { promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import type { FileHandle } from 'node:fs/promises';
import { EcryptfsError, isEcryptfsError } from '../errors.js';
import { MAX_NAME_BYTES } from '../format/filename.js';
import { writeFileAtomic } from '../lower/atomic.js';
import { umountEcryptfs } from '../mount/launch.js';
import { parseSigFile, readSecretFile } from '../volume/keysource.js';
import { splitBytes } from '../volume/volume.js';
import { type Account, isMounted, isRoot, lookupAccount, privatePaths } from './account.js';
import { type CopyReport, copyTree, measure, verifyTree } from './copytree.js';
import { openDir, readHeldFile, removeAt, removeUnder } from './held.js';
import type { ToolIO } from './io.js';
import { addPrivateKeys, mountPrivateDir } from './private-mount.js';
import { unwrapWithLogin } from './recover.js';
import { setupPrivate } from './setup-private.js';
import { run } from '../sys/run.js';

/** The copy's progress, in bytes (the command shows it as a bar on a terminal). */
export interface ProgressBar {
  start(total: number): void;
  increment(bytes: number): void;
  stop(): void;
}

const info = (io: ToolIO, m: string) => io.err(`INFO:  ${m}\n`);
const fail = (m: string): never => {
  throw new EcryptfsError('EINVAL', m);
};

export interface MigrateOptions {
  user: string;
  loginPassFile?: string;
  mountPassFile?: string;
}

interface MigrateState {
  orig: string;
  phase: 'setup' | 'copy';
}

const statePath = (user: string) => join('/home/.ecryptfs', `.migrate-${user}.json`);

async function readState(user: string): Promise<MigrateState | undefined> {
  const t = await fsp.readFile(statePath(user), 'utf8').catch(() => undefined);
  return t === undefined ? undefined : (JSON.parse(t) as MigrateState);
}

async function writeState(user: string, s: MigrateState): Promise<void> {
  await fsp.mkdir('/home/.ecryptfs', { recursive: true, mode: 0o755 });
  await writeFileAtomic(statePath(user), JSON.stringify(s));
}

async function assertDirEmpty(io: ToolIO, dir: string): Promise<void> {
  const st = await fsp.lstat(dir).catch(() => undefined);
  if (!st) return;
  if (!st.isDirectory()) fail(`${dir} exists but is not an empty directory, cannot continue.`);
  if ((await fsp.readdir(dir)).length) {
    io.err(`If you already have some data in directory ${dir},\nplease move all of these files and directories out of the way, and\nfollow the instructions in:\n    ecryptfs-setup-private --undo\n\n`);
    fail(`${dir} is not empty, cannot continue.`);
  }
}

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

/** Processes with files (or their working directory) under `dir`: what `lsof +D` would list. */
async function openFilesUnder(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const pid of await fsp.readdir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    const comm = (await fsp.readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '?')).trim();
    const targets = [await fsp.readlink(`/proc/${pid}/cwd`).catch(() => '')];
    for (const fd of await fsp.readdir(`/proc/${pid}/fd`).catch(() => [] as string[])) targets.push(await fsp.readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''));
    for (const t of targets) if (t === dir || t.startsWith(`${dir}/`)) found.push(`${comm} ${pid} ${t}`);
  }
  return found;
}

/** The seed's checks; returns the bytes of clear file data (the progress bar's total). */
async function sanityCheck(io: ToolIO, a: Account): Promise<number> {
  if (await fsp.lstat(join(a.home, '.ecryptfs')).catch(() => undefined)) fail(`${a.home} appears to be encrypted already.`);
  info(io, 'Checking disk space, this may take a few moments.  Please be patient.');
  const { bytes, blocksBytes, longNames } = await measure(a.home, MAX_NAME_BYTES);
  if (longNames.length) {
    // Encrypted names must fit the lower 255-byte limit; better to say so before moving anything.
    for (const n of longNames.slice(0, 20)) io.err(`    ${n}\n`);
    fail(`${longNames.length} names are longer than ${MAX_NAME_BYTES} bytes, the longest an encrypted filename can be; rename them and run again.`);
  }
  const needed = Math.ceil(blocksBytes * 2.5);
  const fs = await fsp.statfs(a.home);
  const free = fs.bavail * fs.bsize;
  if (needed > free) {
    info(io, '2.5x the size your current home directory is required to perform a migration.');
    info(io, `Needed: ${mib(needed)}; free on the filesystem of ${a.home}: ${mib(free)}.`);
    info(io, 'Once the migration succeeds, you may recover most of this space by deleting the cleartext directory.');
    fail('Not enough free disk space.');
  }
  await assertDirEmpty(io, join(a.home, '.Private'));
  await assertDirEmpty(io, join(a.home, '.ecryptfs'));
  await assertDirEmpty(io, join('/home/.ecryptfs', a.name));
  return bytes;
}

/** The backup's name, /home/USER.XXXXXXXX as mktemp makes it. */
async function backupName(user: string): Promise<string> {
  const abc = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  for (;;) {
    const name = `/home/${user}.${Array.from(randomBytes(8), (b) => abc[b % abc.length]).join('')}`;
    if (!(await fsp.lstat(name).catch(() => undefined))) return name;
  }
}

/** Put the clear home back after a failed setup (the real script's recovery). */
async function restore(a: Account, orig: string): Promise<void> {
  if (await isMounted(a.home)) await umountEcryptfs(a.home).catch(() => 1);
  if (!(await fsp.lstat(orig).catch(() => undefined))) {
    // Stopped between writing the state and moving the home: the home is still the clear one.
    await fsp.rm(statePath(a.name), { force: true });
    return;
  }
  // The new home and its config are the user's: removed through descriptors, never following a link.
  const parent = await openDir(undefined, dirname(a.home));
  try {
    await removeAt(parent, basename(a.home));
  } finally {
    await parent.close();
  }
  await removeUnder('/home/.ecryptfs', [a.name]);
  await fsp.rename(orig, a.home);
  await fsp.rm(statePath(a.name), { force: true });
}

/** Mount the half-migrated home again (resume): keys from the mount passphrase or the login password. */
async function remount(io: ToolIO, a: Account, o: MigrateOptions): Promise<void> {
  if (await isMounted(a.home)) {
    // Still mounted when only this command was killed; a daemon that died too (and its
    // watchdog) leaves a mount that fails with ENOTCONN, to be cleared before mounting again.
    // statfs always asks the daemon, where stat may be answered from the kernel's cache.
    const alive = await fsp.statfs(a.home).then(
      () => true,
      (e: NodeJS.ErrnoException) => e.code !== 'ENOTCONN',
    );
    if (alive) return;
    info(io, `Clearing the dead mount on ${a.home}.`);
    if ((await umountEcryptfs(a.home)) !== 0) await run('umount', ['-l', a.home], { stdin: 'ignore', stdout: 'ignore', stderr: 'ignore' });
  }
  const p = privatePaths(join('/home/.ecryptfs', a.name));
  // The config is the user's by now: read through descriptors, no link followed.
  const files = await (async () => {
    const held: FileHandle[] = [];
    try {
      held.push(await openDir(undefined, join('/home/.ecryptfs', a.name)));
      held.push(await openDir(held[0], '.ecryptfs'));
      held.push(await openDir(undefined, '/dev/shm'));
      return {
        wrapped: await readHeldFile(held[1], 'wrapped-passphrase', [a.uid, 0], p.wrapped),
        sig: await readHeldFile(held[1], 'Private.sig', [a.uid, 0], p.sig),
        shm: await readHeldFile(held[2], `.ecryptfs-${a.name}`, [a.uid, 0], `/dev/shm/.ecryptfs-${a.name}`),
      };
    } catch (e) {
      if (isEcryptfsError(e)) throw e;
      return fail(`The encrypted home's configuration in ${p.dot} cannot be opened (${(e as NodeJS.ErrnoException).code}); it must be a directory, not a link.`);
    } finally {
      for (const h of held) await h.close();
    }
  })();
  let pass: Buffer;
  if (o.mountPassFile) pass = await readSecretFile(o.mountPassFile);
  else if (!files.wrapped && files.shm) {
    // Set up without a login password: the passphrase still waits for the first login.
    let end = files.shm.indexOf(0x0a);
    if (end < 0) end = files.shm.length;
    if (end > 0 && files.shm[end - 1] === 0x0d) end--;
    pass = Buffer.from(files.shm.subarray(0, end));
  } else {
    if (!files.wrapped) fail(`${p.wrapped} is missing: give --mountpass-file`);
    const login = await io.secret(`Enter your login passphrase [${a.name}]: `, o.loginPassFile);
    try {
      pass = unwrapWithLogin(files.wrapped!, login) ?? fail('Your login passphrase is incorrect');
    } finally {
      login.fill(0);
    }
  }
  files.shm?.fill(0);
  await addPrivateKeys(pass);
  pass.fill(0);
  if (!files.sig) fail(`${p.sig} is missing; the encrypted home was not set up completely.`);
  const sigs = parseSigFile(files.sig!.toString('utf8'), p.sig);
  if ((await mountPrivateDir(p.lower, a.home, sigs, [], true)) !== 0) fail(`Could not mount the encrypted home on ${a.home}`);
}

/** `bytes`: the total when the checks have just measured it (a resumed run measures here). */
async function copyWithProgress(io: ToolIO, bar: ProgressBar | undefined, src: string, dst: string, bytes?: number): Promise<CopyReport> {
  if (bar) {
    bytes ??= (await measure(src)).bytes;
    bar.start(Math.max(bytes, 1));
  }
  let r: CopyReport;
  try {
    r = await copyTree(src, dst, { onEntry: (n) => bar?.increment(n) });
  } finally {
    bar?.stop();
  }
  for (const s of r.skippedWhy) io.err(`WARNING:  not copied (socket, FIFO or device the encrypted home cannot hold): ${s}\n`);
  for (const s of r.changed) io.err(`WARNING:  changed while it was being copied: ${s}\n`);
  for (const s of r.xattrsRefused) io.err(`NOTE:  extended attribute not kept (the encrypted home refused it): ${s}\n`);
  return r;
}

export async function migrateHome(o: MigrateOptions, io: ToolIO, bar?: ProgressBar): Promise<number> {
  if (!isRoot()) fail('This program must be executed with root privileges');
  const a = lookupAccount(o.user);
  let state = await readState(a.name);
  let total: number | undefined;
  if (state?.phase === 'setup') {
    // Interrupted before the encrypted home was ready: put the clear home back and start over.
    info(io, `An earlier migration stopped during setup; restoring ${a.home} from ${state.orig}.`);
    await restore(a, state.orig);
    state = undefined;
  }
  if (!state) {
    total = await sanityCheck(io, a);
    info(io, `Checking for open files in ${a.home}`);
    const open = await openFilesUnder(a.home);
    if (open.length) {
      info(io, 'The following files are in use:');
      io.err(`\n${open.map((l) => `    ${l}`).join('\n')}\n\n`);
      fail('Cannot proceed.');
    }
    const orig = await backupName(a.name);
    state = { orig, phase: 'setup' };
    await writeState(a.name, state);
    await fsp.rename(a.home, orig);
    await fsp.chmod(orig, 0o700);
    await fsp.mkdir(a.home, { mode: 0o700 });
    await fsp.chown(a.home, a.uid, a.gid);
    await fsp.chown(orig, a.uid, a.gid);
    try {
      await setupPrivate({ user: a.name, bootstrap: true, migrate: true, loginPassFile: o.loginPassFile, mountPassFile: o.mountPassFile, fnek: true, autoMount: true, autoUmount: true, force: false, noPwCheck: false, wrapping: false }, io);
    } catch (e) {
      await restore(a, orig);
      throw e;
    }
    state = { orig, phase: 'copy' };
    await writeState(a.name, state);
  } else {
    info(io, `Resuming the migration of ${a.home} from ${state.orig}.`);
    await remount(io, a, o);
  }
  info(io, 'Encrypted home has been set up, encrypting files now...this may take a while.');
  const copied = await copyWithProgress(io, bar, state.orig, a.home, total);
  const rootSt = await fsp.lstat(state.orig);
  await fsp.chown(a.home, rootSt.uid, rootSt.gid);
  await fsp.chmod(a.home, rootSt.mode & 0o7777);
  info(io, 'Verifying every file against the backup...');
  const differing: Buffer[] = [];
  const problems = await verifyTree(state.orig, a.home, new Set(copied.skipped), differing, copied.xattrsRefused);
  if (problems.length) {
    for (const p of problems.slice(0, 20)) io.err(`    ${p}\n`);
    // Removed so that the next run copies them again (a same-size, same-mtime file would be kept);
    // walked from the home without following a link the user may have put on the way.
    const top = Buffer.from(`${a.home}/`);
    for (const d of differing) {
      if (!d.subarray(0, top.length).equals(top)) continue;
      await removeUnder(a.home, splitBytes(d.subarray(top.length))).catch(() => undefined);
    }
    fail(`${problems.length} entries differ from ${state.orig}; the clear copy is untouched there. They were removed from the encrypted home: run ecryptfs-migrate-home -u ${a.name} again to copy them again.`);
  }
  if ((await umountEcryptfs(a.home)) !== 0) fail(`Could not unmount ${a.home}`);
  await fsp.rm(statePath(a.name), { force: true });
  io.out(`
========================================================================
Some Important Notes!

 1. The file encryption appears to have completed successfully, however,
    ${a.name} MUST LOGIN IMMEDIATELY, _BEFORE_THE_NEXT_REBOOT_,
    TO COMPLETE THE MIGRATION!!!

 2. If ${a.name} can log in and read and write their files, then the migration is complete,
    and you should remove ${state.orig}.
    Otherwise, restore ${state.orig} back to ${a.home}.

 3. ${a.name} should also run 'ecryptfs-unwrap-passphrase' and record
    their randomly generated mount passphrase as soon as possible.

 4. To ensure the integrity of all encrypted data on this system, you
    should also encrypt swap space with 'ecryptfs-setup-swap'.
========================================================================

`);
  return 0;
}

