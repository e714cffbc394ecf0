/** Terminal prompts: masked secrets and plain questions, through the `read` package. */
import { read } from 'read';
import { EcryptfsError } from '../errors.js';

export function interactive(): boolean {
  return !!process.stdin.isTTY;
}

/** Ask for a secret without echo (prompt goes to stderr so stdout stays clean for output). */
export async function askSecret(prompt: string): Promise<Buffer> {
  if (!interactive()) {
    throw new EcryptfsError('EINVAL', `${prompt.replace(/:\s*$/, '')} needed but standard input is not a terminal; give it with a --*-file option`);
  }
  const answer = await read({ prompt, silent: true, replace: '', output: process.stderr });
  return Buffer.from(answer, 'utf8');
}

export async function ask(prompt: string, def?: string): Promise<string> {
  return read({ prompt, default: def, output: process.stderr });
}
