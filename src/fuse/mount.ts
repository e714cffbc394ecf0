/**
 * Mounting and unmounting a FUSE filesystem served by FuseServer.
 * - root: open /dev/fuse and let util-linux mount(8) (-i: no helpers) do the mount(2) with
 *   fd=3 pointing at our descriptor, passed as the child's fd 3;
 * - other users: fusermount3 mounts and passes the descriptor back (fusermount-helper.py),
 *   see launchUnprivileged().
 * Never run a synchronous child process while mounted: unmounting asks our loop for statfs.
 */
import { spawn } from 'node:child_process';
import { openSync, closeSync, existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface MountParams {
  /** Shown as the device in /proc/mounts. */
  source: string;
  mountpoint: string;
  /** fuse.<subtype> is the filesystem type in /proc/mounts. */
  subtype: string;
  readOnly?: boolean;
  allowOther?: boolean;
  defaultPermissions?: boolean;
  /** More options (nosuid, nodev, noexec, ...). */
  extra?: string[];
}

function run(cmd: string, args: string[], fds: Array<number | 'ignore' | 'pipe'> = []): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe', ...fds] });
    let stderr = '';
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', (e) => resolve({ code: 127, stderr: e.message }));
    p.on('close', (code) => resolve({ code: code ?? 1, stderr: stderr.trim() }));
  });
}

function optionString(p: MountParams, extra: string[]): string {
  const o = [...extra];
  if (p.readOnly) o.push('ro');
  if (p.allowOther) o.push('allow_other');
  if (p.defaultPermissions !== false) o.push('default_permissions');
  o.push(...(p.extra ?? []));
  return o.join(',');
}

/** Mount as root; returns the /dev/fuse descriptor to serve. */
export async function mountAsRoot(p: MountParams): Promise<number> {
  const fd = openSync('/dev/fuse', 'r+');
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const opts = optionString(p, [`fd=3`, `rootmode=40000`, `user_id=${uid}`, `group_id=${gid}`]);
  const r = await run('mount', ['-i', '-t', `fuse.${p.subtype}`, '-o', opts, p.source, p.mountpoint], [fd]);
  if (r.code !== 0) {
    closeSync(fd);
    throw new Error(`mount failed: ${r.stderr || `exit ${r.code}`}`);
  }
  return fd;
}

export function fusermountHelperPath(): string {
  for (const rel of ['./fusermount-helper.py', '../../../src/fuse/fusermount-helper.py']) {
    const path = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error('fusermount-helper.py not found');
}

/**
 * Arguments that make python3 run fusermount3 for `p` and then exec `command` with the
 * /dev/fuse descriptor as fd 3 (for non-root mounts). auto_unmount makes fusermount3 clear the
 * mount if the daemon dies.
 */
export function unprivilegedLaunch(p: MountParams, command: string[]): { cmd: string; args: string[] } {
  const opts = optionString(p, [`fsname=${p.source}`, `subtype=${p.subtype}`, 'auto_unmount']);
  return { cmd: 'python3', args: [fusermountHelperPath(), p.mountpoint, opts, '--', ...command] };
}

/** Unmount: umount(8) as root, fusermount3 -u otherwise; `lazy` detaches a busy or dead mount. */
export async function unmount(mountpoint: string, lazy = false): Promise<void> {
  const root = (process.getuid?.() ?? 0) === 0;
  const r = root ? await run('umount', [...(lazy ? ['-l'] : []), mountpoint]) : await run('fusermount3', ['-u', ...(lazy ? ['-z'] : []), mountpoint]);
  if (r.code !== 0) throw new Error(`unmount of ${mountpoint} failed: ${r.stderr || `exit ${r.code}`}`);
}

/** Is `mountpoint` a FUSE mount of ours in /proc/self/mountinfo? */
export async function isMounted(mountpoint: string): Promise<boolean> {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile('/proc/self/mounts', 'utf8');
  const esc = mountpoint.replace(/ /g, '\\040');
  return text.split('\n').some((l) => l.split(' ')[1] === esc);
}
