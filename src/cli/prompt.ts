/**
 * Terminal prompts. Questions are plain lines (the terminal echoes, as for mount.ecryptfs);
 * secrets go through the `read` package with echo off.
 */
import { createInterface } from 'node:readline';
import { read } from 'read';
import { EcryptfsError } from '../errors.js';
import { readSecretFile } from '../volume/keysource.js';
import type { ToolIO } from '../home/io.js';

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

let stdinSecrets: Buffer[] | undefined;

/**
 * The next secret from a non-terminal stdin: one a line, or up to a NUL (ecryptfs-mount-private
 * pipes "%s\0"); empty at end of input. Stdin is read once; later calls take the next field.
 */
export async function nextStdinSecret(): Promise<Buffer> {
  if (!stdinSecrets) {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const all = Buffer.concat(chunks);
    stdinSecrets = [];
    let start = 0;
    for (let i = 0; i <= all.length; i++) {
      if (i === all.length || all[i] === 0x0a || all[i] === 0x00) {
        let end = i;
        if (end > start && all[end - 1] === 0x0d) end--;
        if (i < all.length || end > start) stdinSecrets.push(Buffer.from(all.subarray(start, end)));
        start = i + 1;
      }
    }
    all.fill(0);
  }
  return stdinSecrets.shift() ?? Buffer.alloc(0);
}

/** One secret: from a file when given, else the terminal (no echo, prompt on stdout), else stdin. */
export async function secretFrom(prompt: string, file?: string): Promise<Buffer> {
  if (file) return readSecretFile(file);
  if (interactive()) return askSecret(prompt, process.stdout);
  return nextStdinSecret();
}

/** The terminal as the home tools' ToolIO: stdout, stderr, secretFrom. */
export const terminalToolIO: ToolIO = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  secret: secretFrom,
  interactive,
};
