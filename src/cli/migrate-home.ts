/**
 * ecryptfs-migrate-home -u USER [--loginpass-file FILE] [--mountpass-file FILE]: arguments, the
 * terminal and the progress bar; the migration itself is home/migrate.ts.
 */
import cliProgress from 'cli-progress';
import { isEcryptfsError } from '../errors.js';
import { migrateHome, type MigrateOptions, type ProgressBar } from '../home/migrate.js';
import { terminalToolIO } from './prompt.js';
import { runMain } from './run.js';

/** The copy's bar on stderr, when stderr is a terminal. */
function progressBar(): ProgressBar | undefined {
  if (!process.stderr.isTTY) return undefined;
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: 'Encrypting [{bar}] {percentage}% | {value}/{total} MiB | ETA {eta_formatted}', hideCursor: true, formatValue: (v, _o, type) => (type === 'value' || type === 'total' ? (v / 1048576).toFixed(1) : String(v)) },
    cliProgress.Presets.shades_classic,
  );
  return { start: (total) => bar.start(total, 0), increment: (n) => bar.increment(n), stop: () => bar.stop() };
}

export const USAGE = `
Usage:

ecryptfs-migrate-home -u USER [--loginpass-file FILE] [--mountpass-file FILE]

 -u,--user       Migrate USER's home directory to an encrypted home directory

WARNING: Make a complete backup copy of the non-encrypted data to
another system or external media. This script is dangerous and, in
case of an error, could result in data lost, or lock you out of your
system!

This program must be executed by root.

`;

export function migrateHomeMain(): void {
  runMain('ecryptfs-migrate-home', async () => {
    const args = process.argv.slice(2);
    const o: Partial<MigrateOptions> = {};
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if ((a === '-u' || a === '--user') && args[i + 1]) o.user = args[++i];
      else if (a === '--loginpass-file' && args[i + 1]) o.loginPassFile = args[++i];
      else if (a === '--mountpass-file' && args[i + 1]) o.mountPassFile = args[++i];
      else if (a === '-l' || a === '-m') {
        process.stderr.write(`ERROR:  ${a} would put a secret on the command line (visible in ps); use --loginpass-file/--mountpass-file or the prompt\n`);
        return 1;
      } else {
        process.stderr.write(USAGE);
        return 1;
      }
    }
    if (!o.user) {
      process.stderr.write(USAGE);
      return 1;
    }
    try {
      return await migrateHome(o as MigrateOptions, terminalToolIO, progressBar());
    } catch (e) {
      if (!isEcryptfsError(e)) throw e;
      process.stderr.write(`ERROR:  ${e.message}\n`);
      return 1;
    }
  });
}
