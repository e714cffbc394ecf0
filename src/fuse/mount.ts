/**
 * Mounting and unmounting a FUSE filesystem served by FuseServer.
 * - root: open /dev/fuse and call mount(2) with fd= naming our descriptor (what util-linux
 *   mount(8) -i would do);
 * - other users: fusermount3 mounts and passes the descriptor back (fusermount-helper.py),
 *   see launchUnprivileged().
 * Never run a synchronous child process while mounted: unmounting asks our loop for statfs.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { openSync, closeSync, existsSync, accessSync, statSync, constants } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';
import { userInfo } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { FuseOperations } from './operations.js';
import { FuseServer, type FuseServerOptions } from './session.js';
import { mountAt, type MountEntry, readMountsSync } from '../sys/mounts.js';
import { mountSyscall } from '../sys/libc.js';
import { openDirPathTrusted } from '../lower/at.js';
import { run as runCommand } from '../sys/run.js';

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

const run = (cmd: string, args: string[], fds: Array<number | 'ignore' | 'pipe'> = []) => runCommand(cmd, args, { stdin: 'ignore', stdout: 'ignore', fds });

function optionString(p: MountParams, extra: string[]): string {
  const o = [...extra];
  if (p.readOnly) o.push('ro');
  if (p.allowOther) o.push('allow_other');
  if (p.defaultPermissions !== false) o.push('default_permissions');
  o.push(...(p.extra ?? []));
  return o.join(',');
}

// ---- set-up checks: each failure says what is wrong and the command that fixes it ----

/** The FUSE device; tests point it elsewhere only through a private mount namespace, never here. */
export const FUSE_DEVICE = '/dev/fuse';

/** Where `cmd` is found in PATH (as spawn would find it), or undefined. */
export function findInPath(cmd: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const full = join(dir, cmd);
    try {
      accessSync(full, constants.X_OK);
      if (statSync(full).isFile()) return full;
    } catch {
      // not here
    }
  }
  return undefined;
}

function whoAmI(): string {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.()}`;
  }
}

function modeString(path: string): string {
  try {
    const st = statSync(path);
    return `mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}, owner uid ${st.uid}`;
  } catch {
    return 'cannot stat it';
  }
}

/** The FUSE mount on top of `mountpoint` (its type); undefined when none. */
function fuseMountAt(mountpoint: string): string | undefined {
  let entries: MountEntry[];
  try {
    entries = readMountsSync();
  } catch {
    return undefined;
  }
  const type = mountAt(entries, mountpoint)?.fstype;
  return type?.startsWith('fuse') ? type : undefined;
}

/**
 * Check what a FUSE mount of `mountpoint` needs before trying it, so that a new user gets the
 * cause and the fix rather than what fusermount3 or mount(8) say half-way (e.g. "fusermount3 did
 * not pass a /dev/fuse descriptor"). Throws an Error whose message names both.
 * `root`: whether the mount is done as root (mount(8)) or through fusermount3 and its helper.
 */
export function checkMountSetup(mountpoint: string, root = (process.getuid?.() ?? 0) === 0): void {
  const dev = FUSE_DEVICE;
  if (!existsSync(dev)) {
    throw new Error(
      `${dev} does not exist, and FUSE mounts need it: the kernel's fuse module is not loaded, or this container was started without the device. ` +
        `Fix: as root run \`modprobe fuse\` (in a container: start it with \`--device /dev/fuse\`)`,
    );
  }
  const busy = fuseMountAt(mountpoint);
  if (busy) {
    throw new Error(
      `${mountpoint} is busy: a ${busy} filesystem is already mounted there. ` +
        `Fix: unmount it first (${root ? `\`umount ${mountpoint}\`; if its daemon died: \`umount -l ${mountpoint}\`` : `\`fusermount3 -u ${mountpoint}\`; if its daemon died: \`fusermount3 -uz ${mountpoint}\``})`,
    );
  }
  if (root) return;
  const user = whoAmI();
  if (!findInPath('fusermount3')) {
    throw new Error(
      `fusermount3 is not installed (or not in PATH): ordinary users mount FUSE filesystems through it. ` +
        `Fix: as root run \`apt-get install fuse3\``,
    );
  }
  if (!findInPath('python3')) {
    throw new Error(
      `python3 is not installed (or not in PATH): mounts by ordinary users need it to receive the ${dev} descriptor from fusermount3. ` +
        `Fix: as root run \`apt-get install python3\``,
    );
  }
  try {
    accessSync(dev, constants.R_OK | constants.W_OK);
  } catch {
    throw new Error(
      `${dev} is not usable by user ${user} (${modeString(dev)}): FUSE mounts by ordinary users need read and write access to it. ` +
        `Fix: as root run \`chmod 0666 ${dev}\` (Debian's usual mode; to keep it after a reboot: ` +
        `\`echo 'KERNEL=="fuse", MODE="0666"' > /etc/udev/rules.d/60-fuse.rules\`), or mount as root`,
    );
  }
  const st = statSync(mountpoint, { throwIfNoEntry: false });
  if (st === undefined) return; // the caller says that it does not exist
  let writable = false;
  try {
    accessSync(mountpoint, constants.W_OK);
    writable = true;
  } catch {
    writable = false;
  }
  const sticky = (st.mode & 0o1000) !== 0 && st.uid !== process.getuid?.();
  if (!writable || sticky) {
    throw new Error(
      `the mount point ${mountpoint} is not ${sticky ? 'owned' : 'writable'} by user ${user} (${modeString(mountpoint)}): an ordinary user may only mount on a directory of their own. ` +
        `Fix: mount on a directory you own (\`mkdir ~/mnt\`), or as root run \`chown ${user} ${mountpoint}\``,
    );
  }
}

/** Mount as root; returns the /dev/fuse descriptor to serve. */
export async function mountAsRoot(p: MountParams): Promise<number> {
  checkMountSetup(p.mountpoint, true);
  const fd = openSync(FUSE_DEVICE, 'r+');
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const opts = optionString(p, [`fd=${fd}`, `rootmode=40000`, `user_id=${uid}`, `group_id=${gid}`]).split(',');
  // mount(2) itself, as mount(8) -i would call it (the generic options as flags, the rest as
  // data): no process start (~10-70 ms of a mount here). /etc/mtab is /proc/mounts and these
  // options are none that mount(8) keeps in utab, so `mount`, `findmnt` and `umount` see the same.
  // The target is the directory walked to from / following root's links only, mounted on through
  // its descriptor: a link a user swapped in on the way (in a directory the user owns) is refused,
  // never followed as root to put the mount somewhere else (over /etc, say).
  let target: number | undefined;
  try {
    target = openDirPathTrusted(resolve(p.mountpoint));
    mountSyscall(p.source, `/proc/self/fd/${target}`, `fuse.${p.subtype}`, opts);
  } catch (e) {
    closeSync(fd);
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ELOOP' ? 'ELOOP (the path goes through a symbolic link that is not root\'s, or that others could change: give the directory it stands for)' : code ?? (e as Error).message;
    throw new Error(`mount failed: mount(2) of ${p.source} on ${p.mountpoint}: ${why}`);
  } finally {
    if (target !== undefined) closeSync(target);
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
  checkMountSetup(p.mountpoint, false);
  const opts = optionString(p, [`fsname=${p.source}`, `subtype=${p.subtype}`, 'auto_unmount']);
  return { cmd: 'python3', args: [fusermountHelperPath(), p.mountpoint, opts, '--', ...command] };
}

/** Unmount: umount(8) as root, fusermount3 -u otherwise; `lazy` detaches a busy or dead mount. */
export async function unmount(mountpoint: string, lazy = false): Promise<void> {
  const root = (process.getuid?.() ?? 0) === 0;
  const r = root ? await run('umount', [...(lazy ? ['-l'] : []), mountpoint]) : await run('fusermount3', ['-u', ...(lazy ? ['-z'] : []), mountpoint]);
  if (r.code !== 0) throw new Error(`unmount of ${mountpoint} failed: ${r.stderr || `exit ${r.code}`}`);
}

// ---- a whole mount: descriptor, server, watchdog, unmount ----

/**
 * A dead daemon leaves its mount point answering ENOTCONN ("Transport endpoint is not
 * connected") until someone runs `umount -l` (root) or `fusermount3 -uz` (the mounting user).
 * This detached watchdog blocks reading a pipe whose only writer is the daemon, so it wakes when
 * the daemon exits for any reason (even SIGKILL) and lazily unmounts the mount point if a
 * fuse.<subtype> mount is still there. (fusermount3's own auto_unmount is asked for too, but
 * fuse3 3.14 skips it without allow_other: its setuid-root process gets EACCES, not ENOTCONN,
 * from the dead mount.)
 */
export function startWatchdog(p: MountParams): { stop(): void } {
  const root = (process.getuid?.() ?? 0) === 0;
  const unmountCmd = root ? 'umount -l "$1"' : 'fusermount3 -uz "$1"';
  const script =
    'while read -r _; do :; done; ' +
    `if findmnt -rn -M "$1" -t "$2" >/dev/null 2>&1; then ${unmountCmd} 2>/dev/null; fi`;
  const child = spawn('sh', ['-c', script, 'fuse-watchdog', p.mountpoint, `fuse.${p.subtype}`], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  child.on('error', () => undefined);
  child.stdin!.on('error', () => undefined);
  // Neither the child nor the pipe may keep our event loop alive.
  child.unref();
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  return {
    stop: () => {
      // EOF: the watchdog checks the mount (gone after a clean unmount) and exits.
      child.stdin!.end();
    },
  };
}

export interface FuseMount {
  readonly server: FuseServer;
  readonly mountpoint: string;
  /** Resolves once the filesystem is unmounted (by us, umount(8) or fusermount3 -u). */
  readonly closed: Promise<void>;
  /** Unmount and wait for `closed`; a busy mount falls back to a lazy unmount. */
  unmount(): Promise<void>;
}

export interface MountFuseOptions extends MountParams {
  server?: FuseServerOptions;
  /** Start the watchdog that lazily unmounts if this process dies (default true). */
  watchdog?: boolean;
}

/**
 * Mount `ops` at `p.mountpoint` and serve it in this process. As root: /dev/fuse + mount(8).
 * As another user the process must have been started through the helper (launchUnprivileged /
 * fusermount-helper.py), which leaves the mounted descriptor on FUSE_FD. Resolves once the kernel's
 * INIT is answered, i.e. the mount is usable.
 */
export async function mountFuse(ops: FuseOperations, p: MountFuseOptions): Promise<FuseMount> {
  const inherited = process.env.FUSE_FD;
  const root = (process.getuid?.() ?? 0) === 0;
  if (!inherited && !root) {
    throw new Error(
      `mounting ${p.mountpoint} with mount(8) needs root, and this process (user ${whoAmI()}) was not started through fusermount-helper.py. ` +
        'Fix: run it as root, or start it with launchUnprivileged() so that fusermount3 mounts it for the user',
    );
  }
  const fd = inherited ? Number(inherited) : await mountAsRoot(p);
  if (inherited) delete process.env.FUSE_FD; // children must not think they own it
  const server = new FuseServer(ops, { wakePath: p.mountpoint, ...p.server });
  const dog = p.watchdog !== false ? startWatchdog(p) : undefined;
  const closed = server.closed.then(() => dog?.stop());
  server.serve(fd);
  await Promise.race([server.initialized, server.closed]);
  return {
    server,
    mountpoint: p.mountpoint,
    closed,
    unmount: async () => {
      await unmount(p.mountpoint).catch(() => unmount(p.mountpoint, true));
      await closed;
    },
  };
}

/**
 * The command that mounts through fusermount3 and then runs `command` (a daemon calling
 * mountFuse) with the descriptor inherited; spawn it with UV_THREADPOOL_SIZE set in its env.
 * Returns the spawned process; the mount exists once the daemon says so (e.g. on stdout).
 */
export function launchUnprivileged(p: MountParams, command: string[], options: SpawnOptions = {}): ChildProcess {
  const { cmd, args } = unprivilegedLaunch(p, command);
  return spawn(cmd, args, {
    ...options,
    env: { UV_THREADPOOL_SIZE: '16', ...(options.env ?? process.env) },
  });
}
