/**
 * ecryptfs-recover-private [--rw] [DIR...]: find encrypted private directories (or take the ones
 * given), ask for the LOGIN passphrase (to unwrap ../.ecryptfs/wrapped-passphrase) or the MOUNT
 * passphrase, and mount read-only (unless --rw) on a new /tmp/ecryptfs.XXXXXXXX. It works without
 * the kernel module, which is why people reach for it: the mount is ours, through FUSE.
 * Messages follow ecryptfs-utils' script. Answers may come from stdin, one a line. The questions
 * are here; finding, reading and mounting are home/recover.ts.
 */
import { findPrivates, mountRecovered, readWrapped, unwrapWithLogin } from '../home/recover.js';
import { ask, askSecret, interactive } from './prompt.js';
import { runMain } from './run.js';

const info = (m: string) => process.stdout.write(`INFO: ${m}\n`);

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
        passphrase = unwrapWithLogin(wrapped, await next('Passphrase: ', true));
        if (!passphrase) {
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
    const { code, tmpdir } = await mountRecovered(d, passphrase, rw);
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
