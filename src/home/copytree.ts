/**
 * Copy a tree into a mounted eCryptfs home and verify it, as `rsync -aH --sparse` would and
 * then some: modes, owners, times, symlinks, hard links, holes. Copying is idempotent (an entry
 * whose type, size and mtime already match is skipped), which is what makes migrate-home
 * resumable after an interruption.
 */
import { createHash } from 'node:crypto';
import { promises as fsp, type Stats } from 'node:fs';
import { join } from 'node:path';

export interface CopyProgress {
  onTotal?(files: number, bytes: number): void;
  onEntry?(bytes: number): void;
}

export interface CopyReport {
  entries: number;
  bytes: number;
  skipped: string[];
}

const CHUNK = 1 << 20;

/** Count entries and bytes first, for the progress bar. */
export async function measure(root: string, maxNameBytes = Infinity): Promise<{ entries: number; bytes: number; blocksBytes: number; longNames: string[] }> {
  const longNames: string[] = [];
  let entries = 0;
  let bytes = 0;
  let blocksBytes = 0;
  const walk = async (d: string) => {
    for (const e of await fsp.readdir(d)) {
      const st = await fsp.lstat(join(d, e));
      entries++;
      if (Buffer.byteLength(e) > maxNameBytes) longNames.push(join(d, e));
      blocksBytes += st.blocks * 512;
      if (st.isFile()) bytes += st.size;
      if (st.isDirectory()) await walk(join(d, e));
    }
  };
  await walk(root);
  return { entries, bytes, blocksBytes, longNames };
}

const sameEntry = (a: Stats, b: Stats | undefined) =>
  !!b && ((a.mode ^ b.mode) & 0o170000) === 0 && (!a.isFile() || a.size === b.size) && Math.floor(a.mtimeMs / 1000) === Math.floor(b.mtimeMs / 1000);

/** Copy a regular file, leaving all-zero 64 KiB runs as holes (they read back as zeros). */
async function copyFile(src: string, dst: string, st: Stats): Promise<void> {
  const inp = await fsp.open(src, 'r');
  const out = await fsp.open(dst, 'w', 0o600);
  try {
    const buf = Buffer.alloc(CHUNK);
    const hole = 65536;
    for (let pos = 0; pos < st.size; ) {
      const { bytesRead } = await inp.read(buf, 0, CHUNK, pos);
      if (bytesRead === 0) break;
      for (let o = 0; o < bytesRead; o += hole) {
        const part = buf.subarray(o, Math.min(o + hole, bytesRead));
        if (part.some((b) => b !== 0)) await out.write(part, 0, part.length, pos + o);
      }
      pos += bytesRead;
    }
    await out.truncate(st.size);
  } finally {
    await inp.close();
    await out.close();
  }
}

async function applyMeta(dst: string, st: Stats): Promise<void> {
  await fsp.lchown(dst, st.uid, st.gid);
  if (!st.isSymbolicLink()) await fsp.chmod(dst, st.mode & 0o7777);
  await fsp.lutimes(dst, st.atime, st.mtime);
}

/** Copy `src`'s contents into `dst` (which exists). */
export async function copyTree(src: string, dst: string, progress: CopyProgress = {}): Promise<CopyReport> {
  const report: CopyReport = { entries: 0, bytes: 0, skipped: [] };
  const links = new Map<string, string>();
  const walk = async (s: string, d: string) => {
    for (const name of await fsp.readdir(s)) {
      const sp = join(s, name);
      const dp = join(d, name);
      const st = await fsp.lstat(sp);
      const have = await fsp.lstat(dp).catch(() => undefined);
      const key = `${st.dev}:${st.ino}`;
      if (st.isDirectory()) {
        if (have && !have.isDirectory()) await fsp.rm(dp, { recursive: true, force: true });
        if (!have?.isDirectory()) await fsp.mkdir(dp, 0o700);
        await walk(sp, dp);
      } else if (!sameEntry(st, have)) {
        if (have) await fsp.rm(dp, { recursive: true, force: true });
        if (st.isFile() && st.nlink > 1 && links.has(key)) await fsp.link(links.get(key)!, dp);
        else if (st.isFile()) await copyFile(sp, dp, st);
        else if (st.isSymbolicLink()) await fsp.symlink(await fsp.readlink(sp), dp);
        else {
          // Sockets, FIFOs and devices do not belong in a home and eCryptfs has no mknod here.
          report.skipped.push(sp);
          continue;
        }
      } else if (st.isFile() && st.nlink > 1 && links.has(key)) {
        // Resumed: make sure the second name is a link to the first, not a second copy.
        const first = await fsp.lstat(links.get(key)!);
        if (first.ino !== have!.ino) {
          await fsp.rm(dp);
          await fsp.link(links.get(key)!, dp);
        }
      }
      if (st.isFile() && st.nlink > 1 && !links.has(key)) links.set(key, dp);
      await applyMeta(dp, st);
      report.entries++;
      if (st.isFile()) report.bytes += st.size;
      progress.onEntry?.(st.isFile() ? st.size : 0);
    }
  };
  await walk(src, dst);
  return report;
}

async function hashFile(p: string): Promise<string> {
  const h = createHash('sha256');
  const fh = await fsp.open(p, 'r');
  try {
    for await (const c of fh.createReadStream()) h.update(c as Buffer);
  } finally {
    await fh.close().catch(() => undefined);
  }
  return h.digest('hex');
}

/** Every entry of `src` against `dst`: type, mode, owner, mtime, size, content, link target, hard links. */
export async function verifyTree(src: string, dst: string, skip: Set<string> = new Set()): Promise<string[]> {
  const problems: string[] = [];
  const groups = new Map<string, number>();
  const walk = async (s: string, d: string) => {
    for (const name of await fsp.readdir(s)) {
      const sp = join(s, name);
      const dp = join(d, name);
      if (skip.has(sp)) continue;
      const a = await fsp.lstat(sp);
      const b = await fsp.lstat(dp).catch(() => undefined);
      if (!b) {
        problems.push(`${dp}: missing`);
        continue;
      }
      const what: string[] = [];
      if (a.mode !== b.mode) what.push(`mode ${a.mode.toString(8)} != ${b.mode.toString(8)}`);
      if (a.uid !== b.uid || a.gid !== b.gid) what.push('owner');
      if (!a.isDirectory() && Math.floor(a.mtimeMs / 1000) !== Math.floor(b.mtimeMs / 1000)) what.push('mtime');
      if (a.isFile()) {
        if (a.size !== b.size) what.push(`size ${a.size} != ${b.size}`);
        else if ((await hashFile(sp)) !== (await hashFile(dp))) what.push('content');
        if (a.nlink > 1) {
          const k = `${a.dev}:${a.ino}`;
          const ino = groups.get(k);
          if (ino === undefined) groups.set(k, b.ino);
          else if (ino !== b.ino) what.push('hard link broken');
        }
      } else if (a.isSymbolicLink() && (await fsp.readlink(sp)) !== (await fsp.readlink(dp))) what.push('symlink target');
      if (what.length) problems.push(`${dp}: ${what.join(', ')}`);
      if (a.isDirectory()) await walk(sp, dp);
    }
  };
  await walk(src, dst);
  return problems;
}
