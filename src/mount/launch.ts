/**
 * Mounting and unmounting an eCryptfs volume: the mount dialogue (through a DialogueIO the caller
 * gives), then the filesystem served by a daemon process (daemon.ts) that gets its keys over an
 * IPC channel, never argv or the environment. Resolves once the mount is up; in the foreground
 * it stays until unmount. The commands (cli/mount.ts) and the ~/Private tools (home/) use it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { checkMountSetup, unprivilegedLaunch } from '../fuse/mount.js';
import { closeSync, promises as fsp, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { EcryptfsError } from '../errors.js';
import { DEFAULT_SALT, deriveKeyAsync, FNEK_SALT } from '../format/kdf.js';
import { addKey, keyringAvailable, unlinkKey } from '../sys/keyring.js';
import { buildAuthTok } from '../format/authtok.js';
import { runDialogue, yesNoWord, type DialogueIO } from './dialogue.js';
import { keysFromKernel } from './keys.js';
import { checkDevRuid, checkKeyBytes, parseMountOptions, parseRcFile, withDefaults, type MountOptions } from './options.js';
import { DAEMON_NODE_FLAGS, daemonCommand, daemonEnv, forkRootDaemon, takePreforkedDaemon } from './daemon-fork.js';
import type { DaemonRequest } from './request.js';
import { appendSigToCache, sigCachePath, sigInCache } from './sigcache.js';
import { daemonAlive, listMountStates, type MountState, readMountState, removeMountState, stateDir } from './state.js';
import { KeyRing } from '../volume/keyring.js';
import { firstLine } from '../volume/keysource.js';
import { run as runCommand } from '../sys/run.js';
import { isMountPoint } from '../sys/mounts.js';

export interface MountArgs {
  lower: string;
  upper: string;
  options: string;
  foreground: boolean;
  /** Print nothing on success (for tools that mount on the user's behalf). */
  quiet?: boolean;
  /** Take defaults from ~/.ecryptfsrc, as mount.ecryptfs does (not for the Private tools). */
  ecryptfsrc?: boolean;
  /** Where the dialogue asks and says things; none: nothing is asked (the tools' own mounts, verbosity=0). */
  io?: DialogueIO;
  /**
   * Root's tools on a user's directory (recover-private, migrate-home, setup-private -b): follow
   * only root's links to the lower directory, never one the user made (resolveRootsLinks).
   */
  rootsLinksOnly?: boolean;
}

const silentIO = (): DialogueIO => ({
  interactive: false,
  secret: () => Promise.reject(new EcryptfsError('EINVAL', 'no passphrase can be asked here')),
  line: () => Promise.resolve(''),
  out: () => undefined,
});



/**
 * The passphrase in a passphrase_passwd_file's or passphrase_passwd_fd's text: a
 * "passphrase_passwd=" (or "passwd=") line, else the first line as its bytes (a bare passphrase,
 * which is what most users put in such a file).
 */
function passphraseFromText(text: Buffer): Buffer {
  for (const line of text.toString('utf8').split('\n')) {
    const m = /^(?:passphrase_passwd|passwd)=(.*)$/.exec(line.replace(/\r$/, ''));
    if (m) return Buffer.from(m[1], 'utf8');
  }
  return firstLine(text);
}

/** key=passphrase:passphrase_passwd_fd=N: read the descriptor to its end and close it (as mount.ecryptfs does). */
function readPassphraseFd(fd: number): Buffer {
  let text: Buffer;
  try {
    text = readFileSync(fd);
  } catch (e) {
    throw new EcryptfsError('EINVAL', `passphrase_passwd_fd=${fd}: cannot read that descriptor (${(e as NodeJS.ErrnoException).code}); open it for the command, e.g. ${fd}<FILE`);
  } finally {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }
  try {
    return passphraseFromText(text);
  } finally {
    text.fill(0);
  }
}

/**
 * ~/.ecryptfsrc, when there is one: mount.ecryptfs's defaults for what -o leaves open. The home is
 * the user's passwd entry, not $HOME (libecryptfs' ecryptfs_parse_rc_file): `sudo mount` reads root's.
 */
async function readEcryptfsrc(): Promise<MountOptions | undefined> {
  const path = join(userInfo().homedir, '.ecryptfsrc');
  const text = await fsp.readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  try {
    return parseRcFile(text);
  } catch (e) {
    throw e instanceof EcryptfsError ? e.withPath(path) : e;
  }
}

/**
 * The lower directory as root's tools mount it: walked from / following root's links only, so a
 * link a user made on the way (or swaps in meanwhile) is refused, never followed as root.
 */
async function resolveRootsLinks(path: string): Promise<string> {
  const { realPathTrusted } = await import('../lower/at.js');
  try {
    return realPathTrusted(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ELOOP' && code !== 'ENOTDIR' && code !== 'ESTALE') throw e;
    throw new EcryptfsError('EINVAL', 'the lower directory is reached through a symbolic link that is not root\'s (or that others could change): run as root, this tool does not follow it; give the directory it stands for', path);
  }
}

/** passphrase_passwd_file holds a line "passphrase_passwd=SECRET" (or passwd=). */
async function readPassphraseOptionFile(path: string): Promise<Buffer> {
  const text = await fsp.readFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new EcryptfsError('EINVAL', `cannot read the passphrase file: ${e.code}`, path);
  });
  try {
    return passphraseFromText(text);
  } finally {
    text.fill(0);
  }
}

export async function mountEcryptfs(a: MountArgs): Promise<number> {
  const source = resolve(a.lower);
  const upper = resolve(a.upper);
  // Set-up problems (no /dev/fuse, its mode, fuse3, a busy or foreign mount point) before the dialogue.
  checkMountSetup(upper);
  for (const [what, p] of [['lower directory', source], ['mount point', upper]] as const) {
    const st = await fsp.stat(p).catch(() => undefined);
    if (!st?.isDirectory()) throw new EcryptfsError('EINVAL', `the ${what} does not exist or is not a directory`, p);
  }
  // Before any question or mount: a records directory another user made is refused with a fix.
  await stateDir();
  // Resolved before mounting, as the kernel does: an encrypted home's ~/.Private is a link
  // through the mount point, and following it later would send the daemon into its own mount.
  const lower = a.rootsLinksOnly ? await resolveRootsLinks(source) : await fsp.realpath(source);
  let o = parseMountOptions(a.options);
  const rc = a.ecryptfsrc ? await readEcryptfsrc() : undefined;
  if (rc) o = withDefaults(o, rc);
  const io = { ...(a.io ?? silentIO()) };
  if (o.verbosity === 0) io.interactive = false;
  if (a.quiet) io.out = () => undefined;
  const ring = new KeyRing();
  let passphrase: Buffer | undefined;
  // As root the daemon is forked now (or was, as the command's first step), so its start (Node and
  // module loading) overlaps the key derivation and the dialogue; it waits for its request and is
  // killed if we do not mount.
  let early: ChildProcess | undefined = takePreforkedDaemon(a.foreground) ?? forkRootDaemon(a.foreground);
  try {
    // Every option is checked before the first question: nobody answers a dialogue to be refused.
    // The early answer, by path; the daemon decides on the descriptor it serves (a user could
    // swap the directory between this check and the daemon's open).
    if (o.checkDevRuid) checkDevRuid((await fsp.stat(lower)).uid, process.getuid?.() ?? 0, lower);
    checkKeyBytes(o);
    if (!o.passphrase && o.passphraseFile) o.passphrase = await readPassphraseOptionFile(o.passphraseFile);
    else if (!o.passphrase && o.passphraseFd !== undefined) o.passphrase = readPassphraseFd(o.passphraseFd);
    // Each derivation is 65,536 SHA-512 rounds, most of the command's CPU: the file key is derived
    // once per passphrase (the dialogue asks for the sig of the one given here again), and the
    // FNEK-salt key (ecryptfs-add-passphrase --fnek) only when a sig the mount needs is missing.
    let fileKeyOf: { pass: Buffer; sig: string } | undefined;
    const fileSigOf = async (p: Buffer): Promise<string> => {
      if (fileKeyOf?.pass === p) return fileKeyOf.sig;
      const k = ring.add({ ...(await deriveKeyAsync(p, o.salt ?? DEFAULT_SALT)), origin: 'passphrase' });
      fileKeyOf = { pass: p, sig: k.sig };
      return k.sig;
    };
    let fnekTried = false;
    const fromKernel = async (p: Buffer | undefined, sigs: string[]): Promise<void> => {
      if (p && !fnekTried && sigs.some((s) => !ring.has(s))) {
        fnekTried = true;
        ring.add({ ...(await deriveKeyAsync(p, FNEK_SALT)), origin: 'fnek' });
      }
      await keysFromKernel(ring, sigs);
    };
    if (o.passphrase) {
      if (o.passphrase.length === 0) throw new EcryptfsError('EINVAL', 'empty passphrase');
      if (o.passphrase.length > 64) throw new EcryptfsError('EINVAL', 'passphrase is longer than 64 bytes');
      await fileSigOf(o.passphrase);
    }
    if (o.passphrase || o.sigs.length > 0) await fromKernel(o.passphrase, [...o.sigs, ...(o.fnekSig ? [o.fnekSig] : [])]);
    const r = await runDialogue(o, io, fileSigOf, readPassphraseOptionFile);
    passphrase = r.passphrase;
    const needed = [...o.sigs, ...(o.fnekSig ? [o.fnekSig] : [])];
    await fromKernel(passphrase, needed);
    // Put the key where the kernel tools look for it (as mount.ecryptfs does), when there is a keyring.
    if (passphrase && (await keyringAvailable())) {
      const k = ring.get(o.sigs[0])!;
      await addKey(k.sig, buildAuthTok(k.key, k.sig, o.salt ?? DEFAULT_SALT)).catch(() => false);
    }
    if (!o.noSigCache && io.interactive && o.verbosity !== 0) {
      const cache = sigCachePath();
      if (!(await sigInCache(o.sigs[0], cache))) {
        io.out(`WARNING: Based on the contents of [${cache}],\nit looks like you have never mounted with this key before.\nThis could mean that you have typed your passphrase wrong.\n\n`);
        if (!(await yesNoWord(io, 'Would you like to proceed with the mount (yes/no)? : '))) {
          io.out('Aborting mount.\n');
          return 1;
        }
        if (await yesNoWord(io, `Would you like to append sig [${o.sigs[0]}] to [${cache}] \nin order to avoid this warning in the future (yes/no)? : `)) {
          await appendSigToCache(o.sigs[0], cache);
          io.out('\nSuccessfully appended new sig to user sig cache file\n');
        } else io.out('\nNot adding sig to user sig cache file; continuing with mount.\n');
      }
    }
    const keys = ring.sigs.map((sig) => {
      const k = ring.get(sig)!;
      return { sig, key: k.key.toString('hex'), origin: k.origin };
    });
    const { passphrase: _p, ...options } = o;
    const child = early;
    early = undefined;
    const code = await startDaemon({ lower, source, upper, options, keys, foreground: a.foreground }, io.out, child);
    if (code === 0 && !a.foreground) io.out('Mounted eCryptfs\n');
    return code;
  } finally {
    early?.kill();
    passphrase?.fill(0);
    o.passphrase?.fill(0);
    ring.destroy();
  }
}

/** Fork the daemon, hand it the keys, wait until it reports the mount (or, with -f, its end). */
function startDaemon(req: DaemonRequest, say: (text: string) => void, early?: ChildProcess): Promise<number> {
  const env = daemonEnv();
  const out = req.foreground ? 'inherit' : 'ignore';
  return new Promise((resolvePromise, reject) => {
    let child: ChildProcess;
    if (early) {
      child = early;
    } else if ((process.getuid?.() ?? 0) === 0) {
      child = forkRootDaemon(req.foreground)!;
    } else {
      // fusermount3 mounts for us; its helper execs the daemon with the /dev/fuse fd as fd 3
      // (the IPC channel is fd 4 so the two do not collide).
      const { cmd, args } = unprivilegedLaunch(
        { source: req.source, mountpoint: req.upper, subtype: 'ecryptfs', readOnly: req.options.readOnly || req.options.encryptedView, extra: req.options.generic },
        [process.execPath, ...DAEMON_NODE_FLAGS, ...daemonCommand()],
      );
      child = spawn(cmd, args, { detached: !req.foreground, stdio: ['ignore', out, req.foreground ? 'inherit' : 'pipe', 'ignore', 'ipc'], env });
      let err = '';
      child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      child.on('exit', () => {
        if (err) process.stderr.write(err);
      });
    }
    let settled = false;
    child.on('message', (m: { mounted?: boolean; error?: string }) => {
      if (settled) return;
      if (m.mounted) {
        if (req.foreground) {
          say('Mounted eCryptfs\n');
          const stop = () => child.kill('SIGTERM');
          process.on('SIGINT', stop);
          process.on('SIGTERM', stop);
          return;
        }
        settled = true;
        child.disconnect();
        child.stderr?.destroy();
        child.unref();
        resolvePromise(0);
      } else if (m.error) {
        settled = true;
        reject(new EcryptfsError('EIO', m.error));
      }
    });
    child.on('exit', (code) => {
      if (!settled) {
        settled = true;
        if (req.foreground) resolvePromise(code ?? 1);
        else reject(new EcryptfsError('EIO', `the mount daemon exited (code ${code}) before the mount was up`));
      }
    });
    child.on('error', reject);
    if (child.exitCode !== null || child.signalCode !== null) {
      settled = true;
      reject(new EcryptfsError('EIO', `the mount daemon exited (code ${child.exitCode ?? child.signalCode}) before the mount was up`));
      return;
    }
    child.send(req);
  });
}

/** Wait (up to 10 s) for a mount's daemon to finish its exit work (keys unlinked, state removed). */
async function daemonGone(s: MountState): Promise<void> {
  for (let i = 0; i < 200 && daemonAlive(s); i++) await new Promise((r) => setTimeout(r, 50));
}

export async function umountEcryptfs(upperArg: string, opts: { lazy?: boolean } = {}): Promise<number> {
  const upper = resolve(upperArg);
  const state = await readMountState(upper);
  const run = async (cmd: string, args: string[]) => (await runCommand(cmd, args, { stdin: 'ignore', stdout: 'inherit', stderr: 'inherit' })).code;
  // A killed daemon's mount is gone already (auto_unmount) while its keys and record stay: listing
  // the records cleans up after dead daemons (keys unlinked with ecryptfs_unlink_sigs).
  if (state && !daemonAlive(state) && !(await isMountPoint(upper))) {
    await listMountStates();
    return 0;
  }
  const lazy = opts.lazy ? ['-l'] : [];
  let code = process.getuid?.() === 0 ? await run('umount', [...lazy, upper]) : await run('fusermount3', ['-u', ...(opts.lazy ? ['-z'] : []), upper]);
  if (code !== 0 && process.getuid?.() !== 0) code = await run('fusermount', ['-u', ...(opts.lazy ? ['-z'] : []), upper]);
  // The daemon unlinks the keys as it ends; returning before that would let a caller re-add
  // them (a new mount) and see them vanish.
  if (code === 0 && state && !opts.lazy) await daemonGone(state);
  // A lazy unmount leaves the mount alive while files are open: its daemon unlinks the keys at the end.
  if (code === 0 && state?.unlinkSigs && !opts.lazy) {
    for (const s of state.sigs) await unlinkKey(s).catch(() => false);
  }
  if (code === 0) await removeMountState(upper);
  return code;
}
