/**
 * ecryptfs-utils' key tools under their own names, with their arguments, prompts and output:
 * ecryptfs-add-passphrase, -wrap-passphrase, -unwrap-passphrase, -rewrap-passphrase, -stat.
 */
import { promises as fsp } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { EcryptfsError, isEcryptfsError } from '../errors.js';
import { buildAuthTok } from '../format/authtok.js';
import { deriveKeyAsync, DEFAULT_SALT, FNEK_SALT } from '../format/kdf.js';
import { unwrapPassphrase, wrapPassphrase } from '../format/wrapped.js';
import { addKey, keyringAvailable, keyringUnavailableReason } from '../sys/keyring.js';
import { writeFileAtomic } from '../lower/atomic.js';
import { askSecret, nextStdinSecret } from './prompt.js';
import { runMain } from './run.js';
import { statText } from './statcmd.js';

const MAX_PASSPHRASE = 64;

export const ADD_USAGE = 'Usage:\necryptfs-add-passphrase [--fnek]\nor\nprintf "%s" "passphrase" | ecryptfs-add-passphrase [--fnek] -\n';
export const WRAP_USAGE = 'Usage:\n\necryptfs-wrap-passphrase [file]\nor\nprintf "%s\\n%s" "passphrase to wrap" "wrapping passphrase" | ecryptfs-wrap-passphrase [file] -\n\nnote: passphrase can be at most 64 bytes long\n';
export const REWRAP_USAGE = 'Usage:\n\necryptfs-rewrap-passphrase [file]\nor\nprintf "%s\\n%s" "old wrapping passphrase" "new wrapping passphrase" | ecryptfs-rewrap-passphrase [file] -\n';
export const STAT_USAGE = 'Usage:\n\necryptfs-stat <filename>\n';
export const UNWRAP_USAGE = 'Usage:\n\necryptfs-unwrap-passphrase [file]\nor\nprintf "%s" "wrapping passphrase" | ecryptfs-unwrap-passphrase [file] -\n';

function checkLength(p: Buffer, what = 'passphrase'): void {
  if (p.length > MAX_PASSPHRASE) throw new EcryptfsError('EINVAL', `${what} is longer than ${MAX_PASSPHRASE} bytes`);
  if (p.length === 0) throw new EcryptfsError('EINVAL', `empty ${what}`);
}

export async function addPassphraseTool(args: string[]): Promise<number> {
  const fnek = args.includes('--fnek');
  const rest = args.filter((a) => a !== '--fnek');
  if (rest.length > 1 || (rest.length === 1 && rest[0] !== '-')) {
    process.stderr.write(ADD_USAGE);
    return 1;
  }
  const pass = rest[0] === '-' ? (await nextStdinSecret()) : await askSecret('Passphrase: ');
  try {
    checkLength(pass);
    const salts = fnek ? [DEFAULT_SALT, FNEK_SALT] : [DEFAULT_SALT];
    const inKernel = await keyringAvailable();
    if (!inKernel) process.stderr.write(`ecryptfs-add-passphrase: ${await keyringUnavailableReason()}\n`);
    for (const salt of salts) {
      const k = await deriveKeyAsync(pass, salt);
      if (inKernel) {
        await addKey(k.sig, buildAuthTok(k.key, k.sig, salt));
        process.stdout.write(`Inserted auth tok with sig [${k.sig}] into the user session keyring\n`);
      } else {
        process.stdout.write(`Auth tok sig [${k.sig}] (no kernel keyring reachable: key not inserted)\n`);
      }
      k.key.fill(0);
    }
    return 0;
  } finally {
    pass.fill(0);
  }
}

export async function wrapPassphraseTool(args: string[]): Promise<number> {
  const file = args[0] ?? join(homedir(), '.ecryptfs', 'wrapped-passphrase');
  let pass: Buffer;
  let wrapping: Buffer;
  if (args[1] === '-') {
    pass = await nextStdinSecret();
    wrapping = await nextStdinSecret();
  } else if (args.length <= 1) {
    pass = await askSecret('Passphrase to wrap: ');
    wrapping = await askSecret('Wrapping passphrase: ');
  } else {
    process.stderr.write(WRAP_USAGE);
    return 1;
  }
  try {
    checkLength(pass);
    checkLength(wrapping, 'wrapping passphrase');
    await writeFileAtomic(file, wrapPassphrase(pass, wrapping));
    return 0;
  } finally {
    pass.fill(0);
    wrapping.fill(0);
  }
}

function unwrapFailed(e: unknown, file: string): number {
  if (isEcryptfsError(e, 'EWRONGPASS')) {
    process.stderr.write(`Error: Unwrapping passphrase failed [-5]\nInfo: the wrapping passphrase does not match ${file}\n`);
    return 1;
  }
  throw e;
}

export async function unwrapPassphraseTool(args: string[]): Promise<number> {
  const file = args[0] && args[0] !== '-' ? args[0] : join(homedir(), '.ecryptfs', 'wrapped-passphrase');
  const stdinMode = args.includes('-');
  const wrapping = stdinMode ? (await nextStdinSecret()) : await askSecret('Passphrase: ');
  try {
    const data = await fsp.readFile(file);
    let pass: Buffer;
    try {
      pass = unwrapPassphrase(data, wrapping);
    } catch (e) {
      return unwrapFailed(e, file);
    }
    process.stdout.write(Buffer.concat([pass, Buffer.from('\n')]));
    pass.fill(0);
    return 0;
  } finally {
    wrapping.fill(0);
  }
}

export async function rewrapPassphraseTool(args: string[]): Promise<number> {
  const file = args[0];
  if (!file) {
    process.stderr.write(REWRAP_USAGE);
    return 1;
  }
  let oldW: Buffer;
  let newW: Buffer;
  if (args[1] === '-') {
    oldW = await nextStdinSecret();
    newW = await nextStdinSecret();
  } else {
    oldW = await askSecret('Old wrapping passphrase: ');
    newW = await askSecret('New wrapping passphrase: ');
    const again = await askSecret('New wrapping passphrase (again): ');
    const same = again.equals(newW);
    again.fill(0);
    if (!same) {
      process.stderr.write('Passphrases do not match\n');
      return 1;
    }
  }
  try {
    checkLength(newW, 'new wrapping passphrase');
    const data = await fsp.readFile(file);
    let pass: Buffer;
    try {
      pass = unwrapPassphrase(data, oldW);
    } catch (e) {
      return unwrapFailed(e, file);
    }
    try {
      await writeFileAtomic(file, wrapPassphrase(pass, newW));
    } finally {
      pass.fill(0);
    }
    return 0;
  } finally {
    oldW.fill(0);
    newW.fill(0);
  }
}

export async function statTool(args: string[]): Promise<number> {
  if (args.length !== 1) {
    process.stderr.write(STAT_USAGE);
    return 1;
  }
  // the argument's raw bytes (a name that is not UTF-8); argv.js loads the lower layer, so only here
  const { rawArg } = await import('./argv.js');
  process.stdout.write(await statText(rawArg(args[0])));
  return 0;
}

const TOOLS: Record<string, (args: string[]) => Promise<number>> = {
  'ecryptfs-add-passphrase': addPassphraseTool,
  'ecryptfs-wrap-passphrase': wrapPassphraseTool,
  'ecryptfs-unwrap-passphrase': unwrapPassphraseTool,
  'ecryptfs-rewrap-passphrase': rewrapPassphraseTool,
  'ecryptfs-stat': statTool,
};

/** Entry point of the bin shims: run the tool named `name` with the process arguments. */
export function runTool(name: string): void {
  const tool = TOOLS[name];
  if (!tool) throw new Error(`unknown tool ${name}`);
  runMain(name, () => tool(process.argv.slice(2)));
}
