/**
 * Terminal prompts. Questions are plain lines (the terminal echoes, as for mount.ecryptfs);
 * secrets go through the `read` package with echo off.
 */
import { createInterface } from 'node:readline';
import { read } from 'read';
import { EcryptfsError } from '../errors.js';

export function interactive(): boolean {
  return !!process.stdin.isTTY;
}

/**
 * Ask for a secret without echo. The prompt goes to stderr by default so that stdout stays clean
 * for a tool's output; the mount dialogue asks on stdout like mount.ecryptfs.
 */
export async function askSecret(prompt: string, output: NodeJS.WritableStream = process.stderr): Promise<Buffer> {
  if (!interactive()) {
    throw new EcryptfsError('EINVAL', `${prompt.replace(/:\s*$/, '')} needed but standard input is not a terminal; give it with a --*-file option`);
  }
  const answer = await read({ prompt, silent: true, replace: '', output, terminal: true });
  return Buffer.from(answer, 'utf8');
}

/** Ask a question; resolves to the line typed ('' at end of input). */
export function ask(prompt: string, output: NodeJS.WritableStream = process.stdout): Promise<string> {
  output.write(prompt);
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin, terminal: false });
    let done = false;
    const finish = (line: string) => {
      if (done) return;
      done = true;
      rl.close();
      resolve(line);
    };
    rl.once('line', finish);
    rl.once('close', () => finish(''));
  });
}
