/**
 * `ecryptfs mount LOWER UPPER [-o OPTS] [-f]`, `mount.ecryptfs LOWER UPPER [-o OPTS]` (what
 * `mount -t ecryptfs` runs) and `ecryptfs umount UPPER`.
 *
 * The dialogue runs here, in the foreground process; the filesystem is then served by a daemon
 * process (daemon.ts) that gets its keys over an IPC channel, never argv or the environment.
 * The command returns once the mount is up ("Mounted eCryptfs"); with -f it stays until unmount.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { checkMountSetup, unprivilegedLaunch } from '../fuse/mount.js';
import { promises as fsp } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EcryptfsError } from '../errors.js';
import { DEFAULT_SALT } from '../format/kdf.js';
import { addKey, keyringAvailable, unlinkKey } from '../keyring/kernel.js';
import { buildAuthTok } from '../format/authtok.js';
import { runDialogue, yesNoWord, type DialogueIO } from '../mount/dialogue.js';
import { keysFromKernel } from '../mount/keys.js';
import { parseMountOptions } from '../mount/options.js';
import type { DaemonRequest } from '../mount/request.js';
import { appendSigToCache, sigCachePath, sigInCache } from '../mount/sigcache.js';
import { readMountState, removeMountState, stateDir } from '../mount/state.js';
import { KeyRing } from '../volume/keyring.js';
import { readSecretFile } from '../volume/keysource.js';
import { ask, askSecret, interactive } from './prompt.js';

export interface MountArgs {
  lower: string;
  upper: string;
  options: string;
  foreground: boolean;
  /** Print nothing on success (for tools that mount on the user's behalf). */
  quiet?: boolean;
}


function terminalIO(): DialogueIO {
  return {
    interactive: interactive(),
    secret: (p) => askSecret(p, process.stdout),
    line: (p) => ask(p),
    out: (t) => process.stdout.write(t),
  };
}

/** passphrase_passwd_file holds a line "passphrase_passwd=SECRET" (or passwd=). */
async function readPassphraseOptionFile(path: string): Promise<Buffer> {
  const text = await fsp.readFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new EcryptfsError('EINVAL', `cannot read the passphrase file: ${e.code}`, path);
  });
  for (const line of text.toString('utf8').split('\n')) {
    const m = /^(?:passphrase_passwd|passwd)=(.*)$/.exec(line.replace(/\r$/, ''));
    if (m) {
      text.fill(0);
      return Buffer.from(m[1], 'utf8');
    }
  }
  text.fill(0);
  // Also accept a bare passphrase (first line), which is what most users put in such a file.
  return readSecretFile(path);
}

export async function mountCommand(a: MountArgs): Promise<number> {
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
  const lower = await fsp.realpath(source);
  const o = parseMountOptions(a.options);
  const io = terminalIO();
  if (o.verbosity === 0) io.interactive = false;
  if (a.quiet) io.out = () => undefined;
  const ring = new KeyRing();
  let passphrase: Buffer | undefined;
  try {
    const r = await runDialogue(
      o,
      io,
      async (p) => (await ring.addPassphrase(p, o.salt ?? DEFAULT_SALT))[0].sig,
      readPassphraseOptionFile,
    );
    passphrase = r.passphrase;
    if (o.passphraseFd !== undefined) throw new EcryptfsError('EINVAL', 'passphrase_passwd_fd is not supported; use passphrase_passwd_file');
    const needed = [...o.sigs, ...(o.fnekSig ? [o.fnekSig] : [])];
    await keysFromKernel(ring, needed);
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
    const code = await startDaemon({ lower, source, upper, options, keys, foreground: a.foreground }, io.out);
    if (code === 0 && !a.foreground) io.out('Mounted eCryptfs\n');
    return code;
  } finally {
    passphrase?.fill(0);
    o.passphrase?.fill(0);
    ring.destroy();
  }
}

/** Fork the daemon, hand it the keys, wait until it reports the mount (or, with -f, its end). */
function startDaemon(req: DaemonRequest, say: (text: string) => void): Promise<number> {
  const script = fileURLToPath(new URL('../mount/daemon.js', import.meta.url));
  // Each pending /dev/fuse read holds a libuv pool thread; the pool is sized at start.
  const env: NodeJS.ProcessEnv = { ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '24' };
  const out = req.foreground ? 'inherit' : 'ignore';
  return new Promise((resolvePromise, reject) => {
    let child: ChildProcess;
    if ((process.getuid?.() ?? 0) === 0) {
      // ECRYPTFS_DAEMON_NODE_ARGS (e.g. --cpu-prof) is for profiling the daemon.
      const extra = (process.env.ECRYPTFS_DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean);
      child = fork(script, [], { detached: !req.foreground, stdio: ['ignore', out, out, 'ipc'], env, execArgv: ['--openssl-legacy-provider', ...extra] });
    } else {
      // fusermount3 mounts for us; its helper execs the daemon with the /dev/fuse fd as fd 3
      // (the IPC channel is fd 4 so the two do not collide).
      const { cmd, args } = unprivilegedLaunch(
        { source: req.source, mountpoint: req.upper, subtype: 'ecryptfs', readOnly: req.options.readOnly || req.options.encryptedView, extra: req.options.generic },
        [process.execPath, '--openssl-legacy-provider', script],
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
    child.send(req);
  });
}

export async function umountCommand(upperArg: string): Promise<number> {
  const upper = resolve(upperArg);
  const state = await readMountState(upper);
  const { spawn } = await import('node:child_process');
  const run = (cmd: string, args: string[]) =>
    new Promise<number>((res) => {
      const p = spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] });
      p.on('error', () => res(127));
      p.on('exit', (c) => res(c ?? 1));
    });
  let code = process.getuid?.() === 0 ? await run('umount', [upper]) : await run('fusermount3', ['-u', upper]);
  if (code !== 0 && process.getuid?.() !== 0) code = await run('fusermount', ['-u', upper]);
  if (code === 0 && state?.unlinkSigs) {
    for (const s of state.sigs) await unlinkKey(s).catch(() => false);
  }
  if (code === 0) await removeMountState(upper);
  return code;
}
