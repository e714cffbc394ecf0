/**
 * ecryptfs-recover-private [--rw] [DIR...]: find encrypted private directories (or take the ones
 * given), ask for the LOGIN passphrase (to unwrap ../.ecryptfs/wrapped-passphrase) or the MOUNT
 * passphrase, and mount read-only (unless --rw) on a new /tmp/ecryptfs.XXXXXXXX. It works without
 * the kernel module, which is why people reach for it: the mount is ours, through FUSE.
 * Messages follow ecryptfs-utils' script. Answers may come from stdin, one a line.
 */
import { promises as fsp, constants as fsc, mkdtempSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { isEcryptfsError } from '../errors.js';
import { FNEK_PREFIX, parseEncryptedFilename } from '../format/filename.js';
import { buildAuthTok } from '../format/authtok.js';
import { DEFAULT_SALT, FNEK_SALT } from '../format/kdf.js';
import { addKey } from '../keyring/kernel.js';
import { unwrapPassphrase } from '../format/wrapped.js';
import { KeyRing } from '../volume/keyring.js';
import { ask, askSecret, interactive } from './prompt.js';
import { mountCommand } from './mount.js';
import { runMain } from './run.js';
import { at, openDir } from '../home/held.js';

const info = (m: string) => process.stdout.write(`INFO: ${m}\n`);

async function findPrivates(dir: string, depth: number, out: string[]): Promise<void> {
  if (depth > 6) return;
  const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isDirectory() || ['proc', 'sys', 'dev', 'run'].includes(e.name) && dir === '/') continue;
    const p = join(dir, e.name);
    if (e.name === '.Private') out.push(p);
    else await findPrivates(p, depth + 1, out);
  }
}

/**
 * The wrapped passphrase beside `priv` (../.ecryptfs/wrapped-passphrase), read as root without
 * following a link where the user could have put one: the user owns .ecryptfs and what is in it.
 * Returns the bytes, undefined when there is none, or why it is not used.
 */
async function readWrapped(priv: string): Promise<Buffer | string | undefined> {
  const shown = join(dirname(priv), '.ecryptfs');
  let parent: FileHandle | undefined;
  let dot: FileHandle | undefined;
  let fh: FileHandle | undefined;
  const refuse = (what: string) => `${what} is a symbolic link or not what it should be: not followed (run as root, this tool reads nothing a user can point elsewhere). Give the directory it stands for (for an encrypted home, /home/.ecryptfs/USER/.Private), or the MOUNT passphrase.`;
  try {
    parent = await fsp.open(dirname(priv), fsc.O_RDONLY | fsc.O_DIRECTORY).catch(() => undefined);
    if (!parent) return undefined;
    try {
      dot = await openDir(parent, '.ecryptfs');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      return code === 'ENOENT' ? undefined : refuse(shown);
    }
    try {
      fh = await fsp.open(at(dot.fd, 'wrapped-passphrase'), fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : refuse(join(shown, 'wrapped-passphrase'));
    }
    if (!(await fh.stat()).isFile()) return refuse(join(shown, 'wrapped-passphrase'));
    return await fh.readFile();
  } finally {
    for (const h of [fh, dot, parent]) await h?.close();
  }
}

export async function recoverPrivate(args: string[], lines?: string[]): Promise<number> {
  const next = async (prompt: string, secret = false): Promise<string> => {
    if (lines) {
      process.stdout.write(prompt + '\n');
      return lines.shift() ?? '';
    }
    return secret ? (await askSecret(prompt, process.stdout)).toString('utf8') : ask(prompt);
  };
  if (process.getuid?.() !== 0) {
    process.stderr.write('ERROR: This program must be run as root.\n');
    return 1;
  }
  const rw = args.includes('--rw');
  let dirs = args.filter((a) => a !== '--rw');
  if (dirs.length === 0) {
    info('Searching for encrypted private directories (this might take a while)...');
    dirs = [];
    await findPrivates('/', 0, dirs);
    if (dirs.length === 0) {
      process.stderr.write('ERROR: No private directories found; make sure that your root filesystem is mounted.\n');
      return 1;
    }
  }
  let rc = 0;
  for (const d of dirs) {
    info(`Found [${d}].`);
    const yn = (await next('Try to recover this directory? [Y/n]: ')).trim();
    if (/^n/i.test(yn)) continue;
    const wrapped = await readWrapped(d);
    let passphrase: Buffer | undefined;
    if (typeof wrapped === 'string') info(wrapped);
    else if (wrapped) {
      info('Found your wrapped-passphrase');
      const know = (await next('Do you know your LOGIN passphrase? [Y/n] ')).trim();
      if (!/^n/i.test(know)) {
        info('Enter your LOGIN passphrase...');
        const login = await next('Passphrase: ', true);
        try {
          passphrase = unwrapPassphrase(wrapped, login);
        } catch (e) {
          if (!isEcryptfsError(e, 'EWRONGPASS')) throw e;
          process.stderr.write('ERROR: The LOGIN passphrase does not unwrap the mount passphrase.\n');
          rc = 1;
          continue;
        }
      }
    }
    if (!passphrase) {
      info('To recover this directory, you MUST have your original MOUNT passphrase.');
      info('When you first setup your encrypted private directory, you were told to record');
      info('your MOUNT passphrase.');
      info('It should be 32 characters long, consisting of [0-9] and [a-f].');
      passphrase = Buffer.from(await next('\nEnter your MOUNT passphrase: ', true), 'utf8');
    }
    // As the real script does: the keys go into root's keyring, the mount names them by sig
    // (no passphrase in a file or on a command line), and they are unlinked at unmount.
    const ring = new KeyRing();
    const [file, fnekKey] = await ring.addPassphrase(passphrase);
    passphrase.fill(0);
    for (const [k, salt] of [[file, DEFAULT_SALT], [fnekKey, FNEK_SALT]] as const) await addKey(k.sig, buildAuthTok(k.key, k.sig, salt));
    const names = (await fsp.readdir(d)).filter((n) => n.startsWith(FNEK_PREFIX));
    const nameSig = names.length ? parseEncryptedFilename(names[0]).sig : undefined;
    ring.destroy();
    const tmpdir = mkdtempSync('/tmp/ecryptfs.');
    const options = [`ecryptfs_sig=${file.sig}`, 'ecryptfs_cipher=aes', 'ecryptfs_key_bytes=16', 'ecryptfs_passthrough=n', 'ecryptfs_unlink_sigs', 'no_sig_cache', 'verbosity=0', rw ? 'rw' : 'ro'];
    if (nameSig) options.push(`ecryptfs_fnek_sig=${nameSig === file.sig ? file.sig : fnekKey.sig}`);
    const code = await mountCommand({ lower: d, upper: tmpdir, options: options.join(','), foreground: false, quiet: true });
    if (code === 0) info(`Success!  Private data mounted at [${tmpdir}].`);
    else {
      process.stderr.write(`ERROR: Failed to mount private data at [${tmpdir}].\n`);
      rc = 1;
    }
  }
  return rc;
}

export function recoverPrivateMain(): void {
  runMain('ecryptfs-recover-private', async () => {
    let lines: string[] | undefined;
    if (!interactive()) {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      lines = Buffer.concat(chunks).toString('utf8').split('\n');
    }
    return recoverPrivate(process.argv.slice(2), lines);
  });
}
