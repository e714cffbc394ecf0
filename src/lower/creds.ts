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
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { setfsgid, setfsuid, setgroupsThread } from './sys.js';

export interface Creds {
  uid: number;
  gid: number;
  /** The caller's process, whose supplementary groups are read (from /proc) only when switching. */
  pid: number;
  /** Given explicitly, these groups are used instead of the process's. */
  groups?: readonly number[];
  /** The process's groups once read, kept for the rest of this request (one /proc read per request). */
  procGroups?: readonly number[];
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

/**
 * Groups by pid, each with the process's start time: a pid reused by another process within the
 * TTL (pid_max may be only 32768) has another start time and is read afresh, never given the
 * exited process's groups. The TTL bounds how long a setgroups() of a live caller goes unseen.
 */
const groupCache = new Map<number, { start: string; groups: number[]; at: number }>();
const GROUP_TTL_MS = 1000;
const statBuf = Buffer.alloc(1024);

/**
 * Field 22 (starttime, clock ticks since boot) of /proc/PID/stat, undefined when the process is
 * gone or the line does not parse. The fields are read after the last ')': comm (field 2) is
 * chosen by the process and may hold spaces and parentheses.
 */
export function processStartTime(pid: number): string | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  let n: number;
  try {
    const fd = openSync(`/proc/${pid}/stat`, 'r');
    try {
      n = readSync(fd, statBuf, 0, statBuf.length, 0);
    } finally {
      closeSync(fd);
    }
  } catch {
    return undefined;
  }
  const line = statBuf.toString('latin1', 0, n);
  const close = line.lastIndexOf(')');
  if (close < 0) return undefined;
  // after ") ": field 3 (state) is index 0, so field 22 is index 19
  const start = line.slice(close + 2).split(' ')[19];
  return start !== undefined && /^\d+$/.test(start) ? start : undefined;
}

function readGroups(pid: number): number[] | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'latin1');
    const m = /^Groups:([^\n]*)$/m.exec(s);
    return m ? m[1].trim().split(/\s+/).filter((x) => x !== '').map(Number) : [];
  } catch {
    return undefined;
  }
}

/** Supplementary groups of process `pid` (from /proc), [] when it is gone or was replaced. */
export function groupsOf(pid: number): number[] {
  const start = processStartTime(pid);
  if (start === undefined) return []; // the caller exited: no supplementary groups
  const now = Date.now();
  const c = groupCache.get(pid);
  if (c && c.start === start && now - c.at < GROUP_TTL_MS) return c.groups;
  const groups = readGroups(pid);
  // the start time again: the groups read belong to the process that had it only if it is unchanged
  if (groups === undefined || processStartTime(pid) !== start) {
    groupCache.delete(pid);
    return [];
  }
  if (groupCache.size > 4096) groupCache.clear();
  groupCache.set(pid, { start, groups, at: now });
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
  setgroupsThread(c.groups ?? (c.procGroups ??= groupsOf(c.pid)));
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
