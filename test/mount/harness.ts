/** Real mounts for tests: `ecryptfs mount` through the CLI, cleaned up whatever happens. */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, chmodSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/fixtures.js';
import { ecryptfs, runCmd } from '../cli/run.js';

/** Why mount tests cannot run here, or false when they can. */
export function mountSkipReason(): string | false {
  if (process.getuid?.() !== 0) return 'mount tests need root (CI runs as root): run them with sudo';
  if (!existsSync('/dev/fuse')) return '/dev/fuse is missing: load the module (modprobe fuse) or, in a container, pass --device /dev/fuse';
  return false;
}

export function isMounted(upper: string): boolean {
  return readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === upper);
}

export interface TestMount {
  lower: string;
  upper: string;
  root: string;
  passFile: string;
  umount(): Promise<void>;
  cleanup(): Promise<void>;
}

/** Mount a fresh (or given) lower dir with `options` (key options added unless given). */
export async function mountVolume(options: string, opts: { lower?: string; passphrase?: string } = {}): Promise<TestMount> {
  const t = tempDir('ecryptfs-mnt-');
  const lower = opts.lower ?? join(t.path, 'lower');
  const upper = join(t.path, 'upper');
  mkdirSync(lower, { recursive: true });
  mkdirSync(upper);
  const passFile = join(t.path, 'pw');
  writeFileSync(passFile, `passphrase_passwd=${opts.passphrase ?? 'mount-test-passphrase'}\n`, { mode: 0o600 });
  const key = options.includes('ecryptfs_sig=') && !options.includes('key=') ? '' : `key=passphrase:passphrase_passwd_file=${passFile},`;
  const r = await ecryptfs(['mount', lower, upper, '-o', `${key}no_sig_cache,${options}`]);
  if (r.code !== 0) {
    t.cleanup();
    throw new Error(`mount failed (${r.code}): ${r.stderr}${r.stdout}`);
  }
  const umount = async () => {
    if (!isMounted(upper)) return;
    const u = await ecryptfs(['umount', upper]);
    if (u.code !== 0) spawnSync('umount', ['-l', upper]);
    for (let i = 0; i < 50 && isMounted(upper); i++) await new Promise((r) => setTimeout(r, 100));
  };
  return {
    lower, upper, root: t.path, passFile, umount,
    async cleanup() {
      await umount();
      t.cleanup();
    },
  };
}

/** Unmount `m`, mount its lower directory again with `options` for `body`, then unmount that. */
export async function withRemount(m: TestMount, options: string, body: (again: TestMount) => Promise<void>): Promise<void> {
  await m.umount();
  const again = await mountVolume(options, { lower: m.lower });
  try {
    await body(again);
  } finally {
    await again.cleanup();
  }
}

/**
 * Make /dev/fuse usable by ordinary users (Debian's default mode; some VMs ship it 0600). Every
 * test that mounts as an ordinary user calls this itself: none may rely on another test or an
 * earlier run having done it (CI resets the device to 0600 before the suite).
 */
export function openDevFuse(): void {
  if ((statSync('/dev/fuse').mode & 0o777) !== 0o666) chmodSync('/dev/fuse', 0o666);
}

export function sh(cmd: string, user?: string): { code: number; out: string } {
  const r = user ? spawnSync('su', [user, '-s', '/bin/sh', '-c', cmd], { encoding: 'utf8' }) : spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

export function ensureUser(name: string): void {
  try {
    execFileSync('id', [name], { stdio: 'ignore' });
  } catch {
    execFileSync('useradd', ['-m', '-s', '/bin/sh', name]);
  }
}

/**
 * A new login user with a home and (optionally) a password. The kernel keeps a uid's user keyring
 * after userdel, so a uid reused from an earlier test would start with that test's keys: clear it.
 */
export function freshUser(name: string, password?: string): { home: string; uid: number; gid: number } {
  sh(`pkill -9 -u ${name} 2>/dev/null; userdel -r ${name} 2>/dev/null; useradd -m -s /bin/sh ${name}`);
  if (password !== undefined) execFileSync('chpasswd', { input: `${name}:${password}\n` });
  const uid = Number(sh(`id -u ${name}`).out.trim());
  // Its own group's id: equal to the uid only on a machine where no group was made on its own.
  const gid = Number(sh(`id -g ${name}`).out.trim());
  sh(`setpriv --reuid=${uid} --regid=${gid} --clear-groups keyctl clear @u`);
  return { home: sh(`getent passwd ${name} | cut -d: -f6`).out.trim(), uid, gid };
}

/**
 * Run a shell command as `user` with its HOME, through setpriv rather than su: su would open a
 * PAM session of its own (and the system's pam_ecryptfs with it, which shares our session counter).
 */
export function runAs(user: string, cmd: string, input = ''): { code: number; out: string } {
  const home = sh(`getent passwd ${user} | cut -d: -f6`).out.trim();
  const env = { PATH: process.env.PATH, HOME: home, USER: user, LOGNAME: user };
  const r = spawnSync('setpriv', ['--reuid', user, '--regid', user, '--init-groups', 'sh', '-c', `cd /tmp && ${cmd}`], { input, encoding: 'utf8', env });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** runAs that must succeed: fails the test with the command's output otherwise. */
export function runAsOk(user: string, cmd: string): string {
  const r = runAs(user, cmd);
  if (r.code !== 0) throw new Error(`as ${user}: ${cmd}: exit ${r.code}\n${r.out}`);
  return r.out;
}

export { runCmd };
