/** Shared process plumbing for every command: typed errors become one line on stderr and exit 1. */
import { isEcryptfsError } from '../errors.js';
import { helpRequested } from './help.js';

export function errorMessage(e: unknown): string {
  if (isEcryptfsError(e)) return e.message;
  const ne = e as NodeJS.ErrnoException;
  if (ne && typeof ne.code === 'string' && ne.path) return `${ne.path}: ${ne.code} (${ne.message.replace(/^[A-Z]+: /, '').replace(/, .*$/, '')})`;
  return e instanceof Error ? e.message : String(e);
}

/**
 * Run a command body; print errors without a stack trace and exit non-zero. A request for help
 * (--help, or -h where the tool has no -h of its own) prints the usage instead of running it.
 */
export function runMain(name: string, body: () => Promise<number | void>): void {
  // A reader that went away (`ecryptfs ls | head`) ends us quietly, as SIGPIPE ends a C tool.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(128 + 13);
    throw e;
  });
  const help = helpRequested(name, process.argv.slice(2));
  const run = help ? help.then((usage) => void process.stdout.write(usage)) : body();
  run.then(
    (code) => {
      process.exitCode = code ?? 0;
    },
    (e: unknown) => {
      process.stderr.write(`${name}: ${errorMessage(e)}\n`);
      if (process.env.ECRYPTFS_DEBUG) process.stderr.write(`${(e as Error).stack}\n`);
      process.exitCode = process.exitCode || 1;
    },
  );
}
