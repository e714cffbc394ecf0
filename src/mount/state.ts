/**
 * A small record per mount (no secrets) so `ecryptfs umount` and `ecryptfs mounts` know the
 * eCryptfs options, which /proc/mounts cannot show for a FUSE filesystem.
 *
 * The records live where only their user can write: `umount` acts on what they say (it unlinks
 * the keys they name), and a directory another user made could hold a symlink that `mount`
 * would write through. So the directory is XDG_RUNTIME_DIR or /run/user/UID when that is the
 * user's own and 0700, else /tmp/ecryptfs-ts-UID created 0700 (mkdir is exclusive) and checked
 * (a directory, not a symlink, owned by the user, no access for others) before every use.
 */
import { promises as fsp, constants as fsc } from 'node:fs';
import { join } from 'node:path';
import { EcryptfsError } from '../errors.js';
import { writeFileAtomic } from '../lower/atomic.js';
import { processStartTime } from '../lower/creds.js';
import { unlinkKey } from '../sys/keyring.js';

export interface MountState {
  lower: string;
  upper: string;
  pid: number;
  options: string;
  sigs: string[];
  unlinkSigs: boolean;
  /** The daemon's start time (/proc/PID/stat field 22): a pid reused by another process is not it. */
  start?: string;
}

const uid = () => process.getuid?.() ?? 0;

/** Why `dir` is not a private directory of the current user, or undefined when it is one. */
async function notPrivate(dir: string): Promise<string | undefined> {
  const st = await fsp.lstat(dir).catch(() => undefined);
  if (!st) return 'it does not exist';
  if (st.isSymbolicLink()) return 'it is a symbolic link';
  if (!st.isDirectory()) return 'it is not a directory';
  if (st.uid !== uid()) return `it is owned by uid ${st.uid}, not by uid ${uid()}`;
  if (st.mode & 0o077) return `its mode is ${(st.mode & 0o7777).toString(8).padStart(4, '0')}, not 0700`;
  return undefined;
}

/** Make `dir` 0700 (an existing one is accepted only when private already); throws with a fix. */
async function privateDir(dir: string, fix: string): Promise<string> {
  await fsp.mkdir(dir, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  const why = await notPrivate(dir);
  if (why) throw new EcryptfsError('EINVAL', `${dir} cannot hold mount records: ${why}. Another user may have made it to plant records or links there. ${fix}`);
  return dir;
}

/** The directory of the records, checked (made if need be) now. */
export async function stateDir(): Promise<string> {
  if (uid() === 0) return privateDir('/run/ecryptfs-ts', 'Remove it (rm -rf /run/ecryptfs-ts) and mount again.');
  for (const base of [process.env.XDG_RUNTIME_DIR, `/run/user/${uid()}`]) {
    if (base && base.startsWith('/') && !(await notPrivate(base))) return privateDir(join(base, 'ecryptfs-ts'), `Remove ${join(base, 'ecryptfs-ts')} and mount again.`);
  }
  const top = await privateDir(`/tmp/ecryptfs-ts-${uid()}`, `Have root remove it (rm -rf /tmp/ecryptfs-ts-${uid()}), or set XDG_RUNTIME_DIR to a directory of yours with mode 0700.`);
  return privateDir(join(top, 'ecryptfs-ts'), `Remove ${top} and mount again.`);
}

const nameFor = (upper: string) => `${Buffer.from(upper).toString('base64url')}.json`;

/** Open a record without following a link, and only if it is a regular file of ours. */
async function readRecord(path: string): Promise<MountState | undefined> {
  const fh = await fsp.open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK).catch(() => undefined);
  if (!fh) return undefined;
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.uid !== uid()) return undefined;
    return JSON.parse(await fh.readFile('utf8')) as MountState;
  } catch {
    return undefined;
  } finally {
    await fh.close();
  }
}

export async function writeMountState(s: MountState): Promise<void> {
  const dir = await stateDir();
  const path = join(dir, nameFor(s.upper));
  // A new file (O_EXCL never follows a link), renamed over the old record.
  await writeFileAtomic(path, JSON.stringify(s));
}

export async function readMountState(upper: string): Promise<MountState | undefined> {
  const dir = await stateDir().catch(() => undefined);
  return dir ? readRecord(join(dir, nameFor(upper))) : undefined;
}

export async function removeMountState(upper: string): Promise<void> {
  const dir = await stateDir().catch(() => undefined);
  if (dir) await fsp.rm(join(dir, nameFor(upper)), { force: true });
}

/** The daemon of record `s` still runs: its pid is there, with the recorded start time. */
export function daemonAlive(s: MountState): boolean {
  try {
    process.kill(s.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return s.start === undefined || processStartTime(s.pid) === s.start;
}

/**
 * Undo what a killed daemon (SIGKILL, OOM) left: with ecryptfs_unlink_sigs its keys leave the
 * user keyring, as they would have at its unmount, except those a live mount of ours still names;
 * then its record goes. `live` are the records of running daemons.
 */
async function forgetDead(path: string, s: MountState, live: MountState[]): Promise<void> {
  if (s.unlinkSigs) {
    for (const sig of s.sigs) if (!live.some((l) => l.sigs.includes(sig))) await unlinkKey(sig).catch(() => false);
  }
  await fsp.rm(path, { force: true });
}

/** The records of running daemons; those of dead ones are cleaned up (forgetDead) on the way. */
export async function listMountStates(): Promise<MountState[]> {
  const dir = await stateDir().catch(() => undefined);
  if (!dir) return [];
  const live: MountState[] = [];
  const dead: Array<[string, MountState]> = [];
  for (const n of await fsp.readdir(dir).catch(() => [] as string[])) {
    if (!n.endsWith('.json')) continue;
    const s = await readRecord(join(dir, n));
    if (!s) continue;
    if (daemonAlive(s)) live.push(s);
    else dead.push([join(dir, n), s]);
  }
  for (const [path, s] of dead) await forgetDead(path, s, live);
  return live;
}
