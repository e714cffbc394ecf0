/**
 * Running other programs: the few shapes the code needs, in one place. Secrets go to a child on
 * its standard input, never in argv (every user can read argv in ps and /proc). A program that
 * cannot be started (not installed, not in PATH) is code 127, as a shell says, with the error.
 */
import { spawn, spawnSync } from 'node:child_process';

export interface RunOptions {
  /** Written to the child's standard input, then closed (nothing when absent). */
  input?: Uint8Array | string;
  /** 'pipe' (default): captured into the result; 'inherit': ours; 'ignore'. */
  stdout?: 'pipe' | 'inherit' | 'ignore';
  stderr?: 'pipe' | 'inherit' | 'ignore';
  /** 'inherit': the child reads our stdin (a run that may ask); 'ignore': /dev/null; otherwise `input`. */
  stdin?: 'inherit' | 'ignore';
  /** Descriptors passed on as fd 3, 4, ... */
  fds?: Array<number | 'ignore' | 'pipe'>;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Milliseconds before the child is killed (SIGTERM). */
  timeout?: number;
}

export interface RunResult {
  /** The exit code; 127 when it could not be started, 1 when killed by a signal. */
  code: number;
  stdout: Buffer;
  /** Trimmed. */
  stderr: string;
  /** Why it could not be started (ENOENT: not installed). */
  error?: NodeJS.ErrnoException;
}

const inputOf = (i: Uint8Array | string | undefined) => (typeof i === 'string' ? Buffer.from(i) : (i ?? Buffer.alloc(0)));

/** The environment, directory and timeout of `o` as spawn options (those given only). */
const spawnOptions = (o: RunOptions) => ({
  ...(o.env ? { env: o.env } : {}),
  ...(o.cwd ? { cwd: o.cwd } : {}),
  ...(o.timeout ? { timeout: o.timeout } : {}),
});

/** Run `cmd` and wait for it: its output captured, its input from `input`. Never throws. */
export function run(cmd: string, args: string[], o: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, {
      stdio: [o.stdin ?? 'pipe', o.stdout ?? 'pipe', o.stderr ?? 'pipe', ...(o.fds ?? [])],
      ...spawnOptions(o),
    });
    const out: Buffer[] = [];
    let err = '';
    let error: NodeJS.ErrnoException | undefined;
    p.stdout?.on('data', (d: Buffer) => out.push(d));
    p.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', (e: NodeJS.ErrnoException) => {
      error = e;
      resolve({ code: 127, stdout: Buffer.concat(out), stderr: e.message, error: e });
    });
    p.on('close', (code) => {
      if (!error) resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr: err.trim() });
    });
    if (p.stdin) {
      p.stdin.on('error', () => undefined); // the child may exit without reading its input
      p.stdin.end(inputOf(o.input));
    }
  });
}

/** run() for callers that must answer synchronously. */
export function runSync(cmd: string, args: string[], o: Omit<RunOptions, 'fds' | 'stdin'> = {}): RunResult {
  const r = spawnSync(cmd, args, {
    input: inputOf(o.input),
    stdio: ['pipe', o.stdout ?? 'pipe', o.stderr ?? 'pipe'],
    ...spawnOptions(o),
  });
  if (r.error) return { code: 127, stdout: Buffer.alloc(0), stderr: r.error.message, error: r.error as NodeJS.ErrnoException };
  return { code: r.status ?? 1, stdout: r.stdout ?? Buffer.alloc(0), stderr: (r.stderr?.toString() ?? '').trim() };
}

/** The user a command runs as (root dropping to it). */
export interface RunAs {
  uid: number;
  gid: number;
}

/** `command` run as `who` (real and effective ids, its groups) through setpriv(1). */
export function runAsUser(who: RunAs, command: string[], o: RunOptions = {}): Promise<RunResult> {
  return run('setpriv', [`--reuid=${who.uid}`, `--regid=${who.gid}`, '--init-groups', '--', ...command], o);
}
