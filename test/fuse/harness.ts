/** Starting the memfs daemon on a temp dir, and cleaning up whatever a failed test left mounted. */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DAEMON = fileURLToPath(new URL('./memfs-daemon.js', import.meta.url));

/** Why FUSE mount tests cannot run here, or undefined when they can. */
export function rootSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'FUSE mounts need Linux';
  if ((process.getuid?.() ?? -1) !== 0) return 'mounting with mount(8) needs root (run the tests as root)';
  if (!existsSync('/dev/fuse')) return '/dev/fuse is missing (load the fuse module or pass --device /dev/fuse)';
  return undefined;
}

export function tempMountpoint(): string {
  return mkdtempSync(join(tmpdir(), 'fuse-test-'));
}

export async function mountedAt(mountpoint: string): Promise<string | undefined> {
  const text = await readFile('/proc/self/mounts', 'utf8');
  return text.split('\n').find((l) => l.split(' ')[1] === mountpoint.replace(/ /g, '\\040'));
}

/** Run a command (never synchronously: the mount may be served by someone we wait on). */
export function run(cmd: string, args: string[], opts: SpawnOptions = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', (e) => resolve({ code: 127, stdout, stderr: e.message }));
    p.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

export interface Daemon {
  child: ChildProcess;
  mountpoint: string;
  /** The daemon's "ready" line payload (negotiated connection). */
  connection: { flags: number; maxWrite: number; minor: number };
  /** Resolves with the exit code once the daemon exited; `sawClosed` tells if it printed "closed". */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; sawClosed: boolean }>;
  stderr(): string;
  /** Best-effort teardown for after hooks: kill, lazy unmount, remove the dir. */
  cleanup(): Promise<void>;
}

/** Spawn `command` (a memfs daemon, possibly behind the fusermount helper) and wait for "ready". */
export function startDaemon(
  mountpoint: string,
  cmd: string,
  args: string[],
  env: Record<string, string> = {},
  opts: SpawnOptions = {},
): Promise<Daemon> {
  const child = spawn(cmd, args, {
    ...opts,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, UV_THREADPOOL_SIZE: '12', MEMFS_DAEMON: '1', ...env },
  });
  let out = '';
  let err = '';
  let sawClosed = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; sawClosed: boolean }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, sawClosed })),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon not ready after 15 s: ${err}`)), 15000);
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('closed\n')) sawClosed = true;
      const m = /^ready (.*)$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        out = out.replace(/^ready .*\n/m, '');
        resolve({
          child,
          mountpoint,
          connection: JSON.parse(m[1]),
          exited,
          stderr: () => err,
          cleanup: async () => {
            if (child.exitCode === null && child.signalCode === null) {
              child.kill('SIGTERM');
              const t = setTimeout(() => child.kill('SIGKILL'), 3000);
              await exited;
              clearTimeout(t);
            }
            if (await mountedAt(mountpoint)) {
              const r = await run('umount', ['-l', mountpoint]);
              if (r.code !== 0) await run('fusermount3', ['-uz', mountpoint]);
            }
            rmSync(mountpoint, { recursive: true, force: true });
          },
        });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited (${code}) before ready: ${err}`));
    });
  });
}

export function startMemfs(mountpoint: string, env: Record<string, string> = {}): Promise<Daemon> {
  return startDaemon(mountpoint, process.execPath, [DAEMON, mountpoint], env);
}
