/** Run the compiled CLI entry points as a user would, capturing output and exit code. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const DIST_SRC = fileURLToPath(new URL('../../src/', import.meta.url));
export const BIN = fileURLToPath(new URL('../../../bin/', import.meta.url));

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Variables added to the test runner's environment, or (with `onlyEnv`) the whole of it. */
  env?: NodeJS.ProcessEnv;
  /** `env` alone, nothing of the runner's (a login's PATH, no root-only shims). */
  onlyEnv?: boolean;
  cwd?: string;
}

/** Run `file` (a path) with node and args; stdin from `input`. */
export function runNode(file: string, args: string[], input?: string | Buffer, o: RunOptions = {}): Promise<RunResult> {
  return runCmd(process.execPath, ['--openssl-legacy-provider', file, ...args], input, o);
}

export function runCmd(cmd: string, args: string[], input?: string | Buffer, o: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env = o.onlyEnv ? { ...o.env } : { ...process.env, ...o.env };
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env, cwd: o.cwd });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    p.stdin.on('error', () => undefined); // the child may exit without reading stdin
    p.stdin.end(input ?? '');
  });
}

export const ecryptfs = (args: string[], input?: string) => runNode(`${DIST_SRC}cli/main.js`, args, input);
export const tool = (name: string, args: string[], input?: string | Buffer) => runNode(`${BIN}${name}.js`, args, input);
