/**
 * Per-request credentials for a root daemon serving users' files (as gocryptfs does for
 * allow_other as root): around each synchronous lower call, the main thread takes the caller's
 * fsuid, fsgid and supplementary groups (raw per-thread syscalls), and gives them back before
 * anything else runs. The lower filesystem then checks permissions itself, new files get the
 * caller as owner and a setgid directory's group, and no chown by name is ever needed.
 *
 * Never across an await and never in the libuv pool: the pool threads keep the daemon's own
 * credentials, which only ever do I/O on descriptors already opened.
 */
import { readFileSync } from 'node:fs';
import { setfsgid, setfsuid, setgroupsThread } from './sys.js';

export interface Creds {
  uid: number;
  gid: number;
  /** The caller's process, whose supplementary groups are read (from /proc) only when switching. */
  pid: number;
  /** Given explicitly, these groups are used instead of the process's. */
  groups?: readonly number[];
}

let enabled: boolean | undefined;
let ownGroups: number[] = [];
let ownUid = 0;
let ownGid = 0;

/** Switching is possible (and needed) only in a daemon running as root. */
export function credsEnabled(): boolean {
  if (enabled === undefined) {
    enabled = process.getuid?.() === 0 && (process.arch === 'x64' || process.arch === 'arm64');
    if (enabled) {
      ownGroups = process.getgroups?.() ?? [];
      ownUid = process.geteuid?.() ?? 0;
      ownGid = process.getegid?.() ?? 0;
    }
  }
  return enabled;
}

const groupCache = new Map<number, { groups: number[]; at: number }>();
const GROUP_TTL_MS = 1000;

/** Supplementary groups of process `pid` (from /proc), [] when it is gone. */
function groupsOf(pid: number): number[] {
  if (pid <= 0) return [];
  const now = Date.now();
  const c = groupCache.get(pid);
  if (c && now - c.at < GROUP_TTL_MS) return c.groups;
  let groups: number[] = [];
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'latin1');
    const m = /^Groups:([^\n]*)$/m.exec(s);
    if (m) groups = m[1].trim().split(/\s+/).filter((x) => x !== '').map(Number);
  } catch {
    // the caller exited: no supplementary groups
  }
  if (groupCache.size > 4096) groupCache.clear();
  groupCache.set(pid, { groups, at: now });
  return groups;
}

/** The credentials a FUSE request came with, or undefined when no switch is needed (root). */
export function callerCreds(ctx: { uid: number; gid: number; pid: number } | undefined): Creds | undefined {
  if (!ctx || ctx.uid === 0 || !credsEnabled()) return undefined;
  return { uid: ctx.uid, gid: ctx.gid, pid: ctx.pid };
}

let depth = 0;

/** Run `fn` (synchronous) with `c` as the filesystem credentials of this thread. */
export function asCaller<T>(c: Creds | undefined, fn: () => T): T {
  if (!c || depth > 0) return fn();
  depth++;
  setgroupsThread(c.groups ?? groupsOf(c.pid));
  setfsgid(c.gid);
  setfsuid(c.uid);
  try {
    return fn();
  } finally {
    setfsuid(ownUid);
    setfsgid(ownGid);
    setgroupsThread(ownGroups);
    depth--;
  }
}

/**
 * Run `fn` (synchronous) with the process umask set to `mask`, restored after: the caller's umask
 * when the kernel left it to us (FUSE_DONT_MASK), so that the lower filesystem applies it or a
 * default ACL in its place; 0 when the kernel applied it already (never the daemon's own on top).
 */
export function withUmask<T>(mask: number | undefined, fn: () => T): T {
  const old = process.umask(mask ?? 0);
  try {
    return fn();
  } finally {
    process.umask(old);
  }
}
