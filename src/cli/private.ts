/**
 * The ~/Private commands of ecryptfs-utils: ecryptfs-setup-private, ecryptfs-mount-private,
 * ecryptfs-umount-private and ecryptfs-insert-wrapped-passphrase-into-keyring. Arguments and
 * the terminal here; what they do is in home/setup-private.ts and home/private-mount.ts.
 */
import { promises as fsp } from 'node:fs';
import { EcryptfsError, isEcryptfsError } from '../errors.js';
import { currentAccount, privatePaths } from '../home/account.js';
import { insertWrapped, mountPrivate, umountPrivate } from '../home/private-mount.js';
import { setupPrivate, type SetupOptions } from '../home/setup-private.js';
import { secretFrom, terminalToolIO } from './prompt.js';
import { runMain } from './run.js';

export async function insertWrappedMain(args: string[]): Promise<number> {
  const file = args[0] && args[0] !== '-' ? args[0] : privatePaths(currentAccount().home).wrapped;
  if (args.length > 2 || (args.length === 2 && args[1] !== '-')) {
    process.stderr.write('ERROR: a passphrase on the command line is visible to every user (ps); give "-" and the passphrase on stdin\n');
    return 1;
  }
  const login = await secretFrom('Passphrase: ');
  let sig: string;
  try {
    sig = await insertWrapped(await fsp.readFile(file), login);
  } catch (e) {
    if (isEcryptfsError(e, 'EWRONGPASS')) {
      process.stderr.write('Error: Unwrapping passphrase and inserting into the user session keyring failed [-5]\nInfo: Check the system log for more information from libecryptfs\n');
      return 1;
    }
    throw e;
  } finally {
    login.fill(0);
  }
  process.stdout.write(`Inserted auth tok with sig [${sig}] into the user session keyring\n`);
  return 0;
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
      await setupPrivate(o, terminalToolIO);
    } catch (e) {
      if (!isEcryptfsError(e)) throw e;
      if (e.message) process.stderr.write(`ERROR:  ${e.message}\n`);
      return 1;
    }
    return 0;
  });
}

export const insertWrappedToolMain = () => runMain('ecryptfs-insert-wrapped-passphrase-into-keyring', () => insertWrappedMain(process.argv.slice(2)));
export const mountPrivateToolMain = () => runMain('ecryptfs-mount-private', () => mountPrivate(terminalToolIO));
export const umountPrivateToolMain = () => runMain('ecryptfs-umount-private', () => umountPrivate(terminalToolIO, process.argv.slice(2).includes('-f')));
