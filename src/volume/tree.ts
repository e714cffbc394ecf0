/**
 * Whole-tree conversion without a mount: decrypt a lower tree into clear files, or encrypt clear
 * files into a lower directory. Outputs are written under a temporary name and renamed when
 * whole, so an interrupted or failed file never leaves a half-written output.
 */
import { promises as fsp, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { EcryptfsError, isEcryptfsError } from '../errors.js';
import { EcryptfsFile } from './file.js';
import { CHUNK } from './file.js';
import type { Volume } from './volume.js';

export interface TreeProblem {
  /** The source path (lower path for decrypt, clear path for encrypt). */
  path: string;
  error: Error;
}

export interface TreeProgress {
  /** Called once with the totals, then after every file with bytes done so far. */
  onTotal?(files: number, bytes: number): void;
  onFile?(path: string, bytesDone: number): void;
}

export interface TreeResult {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
  problems: TreeProblem[];
}

const tmpName = (dest: string) => join(dirname(dest), `.${basename(dest)}.ecryptfs-tmp-${randomBytes(4).toString('hex')}`);

async function keepMeta(path: string, st: Stats, isLink: boolean): Promise<void> {
  if (process.getuid?.() === 0) await fsp.lchown(path, st.uid, st.gid).catch(() => undefined);
  if (!isLink) await fsp.chmod(path, st.mode & 0o7777);
  await fsp.lutimes(path, st.atime, st.mtime);
}

function newResult(): TreeResult {
  return { files: 0, dirs: 0, symlinks: 0, bytes: 0, problems: [] };
}

/**
 * Decrypt lower entries (`lowerPaths`, relative to the volume's lower root; '' = the whole
 * volume, whose contents then fill `dest` like `cp -a SRC/. DEST`) into `dest`.
 */
export async function decryptTree(
  vol: Volume,
  lowerPaths: string[],
  dest: string,
  opts: { passthrough?: boolean; progress?: TreeProgress } = {},
): Promise<TreeResult> {
  const res = newResult();
  const links = new Map<string, string>();
  await fsp.mkdir(dest, { recursive: true });
  if (opts.progress?.onTotal) {
    let files = 0;
    let bytes = 0;
    const count = async (p: string): Promise<void> => {
      const st = await vol.lower.lstat(p).catch(() => undefined);
      if (!st) return;
      if (st.isDirectory()) for (const n of await vol.lower.readdir(p)) await count(p === '' ? n : `${p}/${n}`);
      else if (st.isFile()) {
        files++;
        bytes += st.size;
      }
    };
    for (const p of lowerPaths) await count(p);
    opts.progress.onTotal(files, bytes);
  }
  const visit = async (lowerPath: string, outPath: string): Promise<void> => {
    const st = await vol.lower.lstat(lowerPath);
    if (st.isDirectory()) {
      await fsp.mkdir(outPath, { recursive: true });
      for (const n of await vol.lower.readdir(lowerPath)) {
        const child = lowerPath === '' ? n : `${lowerPath}/${n}`;
        let clear: string;
        try {
          clear = vol.decodeName(n);
        } catch (e) {
          res.problems.push({ path: vol.lower.abs(child), error: e as Error });
          continue;
        }
        try {
          await visit(child, join(outPath, clear));
        } catch (e) {
          res.problems.push({ path: vol.lower.abs(child), error: isEcryptfsError(e) ? e.withPath(vol.lower.abs(child)) : (e as Error) });
        }
      }
      if (lowerPath !== '') await keepMeta(outPath, st, false);
      res.dirs++;
    } else if (st.isSymbolicLink()) {
      const target = await vol.readlinkLower(lowerPath);
      await fsp.rm(outPath, { force: true });
      await fsp.symlink(target, outPath);
      await keepMeta(outPath, st, true);
      res.symlinks++;
    } else if (st.isFile()) {
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? links.get(key) : undefined;
      if (first) {
        await fsp.rm(outPath, { force: true });
        await fsp.link(first, outPath);
      } else {
        res.bytes += await decryptFile(vol, lowerPath, outPath, st, !!opts.passthrough);
        if (st.nlink > 1) links.set(key, outPath);
      }
      res.files++;
      opts.progress?.onFile?.(lowerPath, st.size);
    }
  };
  for (const p of lowerPaths) {
    try {
      await visit(p, p === '' ? dest : join(dest, vol.decodeName(basename(p))));
    } catch (e) {
      res.problems.push({ path: vol.lower.abs(p), error: isEcryptfsError(e) ? e.withPath(vol.lower.abs(p)) : (e as Error) });
    }
  }
  return res;
}

async function decryptFile(vol: Volume, lowerPath: string, outPath: string, st: Stats, passthrough: boolean): Promise<number> {
  const tmp = tmpName(outPath);
  let f: EcryptfsFile | undefined;
  try {
    f = await EcryptfsFile.open(vol.lower, lowerPath, vol.keys, { writable: false, passthrough, xattrMetadata: true });
    const out = await fsp.open(tmp, 'wx', 0o600);
    try {
      const buf = Buffer.allocUnsafe(CHUNK);
      for (let pos = 0; pos < f.size; ) {
        const n = await f.readInto(buf, pos);
        if (n === 0) break;
        await out.write(buf, 0, n, pos);
        pos += n;
      }
    } finally {
      await out.close();
    }
    await keepMeta(tmp, st, false);
    await fsp.rename(tmp, outPath);
    return f.size;
  } catch (e) {
    await fsp.rm(tmp, { force: true });
    throw e;
  } finally {
    await f?.close();
  }
}

/**
 * Encrypt clear paths into the volume. A directory's contents go into `destDir` (a clear path in
 * the volume, '' = root); a file goes to `destDir/<its name>`.
 */
export async function encryptTree(vol: Volume, sources: string[], destDir = '', opts: { progress?: TreeProgress } = {}): Promise<TreeResult> {
  const res = newResult();
  const links = new Map<string, string>();
  if (opts.progress?.onTotal) {
    let files = 0;
    let bytes = 0;
    const count = async (p: string): Promise<void> => {
      const st = await fsp.lstat(p);
      if (st.isDirectory()) for (const n of await fsp.readdir(p)) await count(join(p, n));
      else if (st.isFile()) {
        files++;
        bytes += st.size;
      }
    };
    for (const s of sources) await count(s);
    opts.progress.onTotal(files, bytes);
  }
  const join2 = (a: string, b: string) => (a === '' ? b : `${a}/${b}`);
  const visit = async (src: string, clearPath: string, isRoot: boolean): Promise<void> => {
    const st = await fsp.lstat(src);
    if (st.isDirectory()) {
      if (!isRoot) {
        const lp = vol.lowerPath(clearPath);
        await vol.lower.mkdir(lp, 0o700).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'EEXIST') throw e;
        });
      }
      for (const n of await fsp.readdir(src)) {
        try {
          await visit(join(src, n), join2(clearPath, n), false);
        } catch (e) {
          res.problems.push({ path: join(src, n), error: e as Error });
        }
      }
      if (!isRoot) await keepMeta(vol.lower.abs(vol.lowerPath(clearPath)), st, false);
      res.dirs++;
    } else if (st.isSymbolicLink()) {
      const lp = vol.lowerPath(clearPath);
      await vol.lower.unlink(lp).catch(() => undefined);
      await vol.symlink(await fsp.readlink(src), clearPath);
      await keepMeta(vol.lower.abs(lp), st, true);
      res.symlinks++;
    } else if (st.isFile()) {
      const lp = vol.lowerPath(clearPath);
      const key = `${st.dev}:${st.ino}`;
      const first = st.nlink > 1 ? links.get(key) : undefined;
      if (first) {
        await vol.lower.unlink(lp).catch(() => undefined);
        await vol.lower.link(first, lp);
      } else {
        await encryptFile(vol, src, lp, st);
        if (st.nlink > 1) links.set(key, lp);
        res.bytes += st.size;
      }
      res.files++;
      opts.progress?.onFile?.(src, st.size);
    } else {
      throw new EcryptfsError('EUNSUPPORTED', 'only files, directories and symlinks can be encrypted', src);
    }
  };
  for (const s of sources) {
    try {
      const st = await fsp.lstat(s);
      if (st.isDirectory()) await visit(s, destDir, destDir === '');
      else await visit(s, join2(destDir, basename(s)), false);
    } catch (e) {
      res.problems.push({ path: s, error: e as Error });
    }
  }
  return res;
}

async function encryptFile(vol: Volume, src: string, lowerPath: string, st: Stats): Promise<void> {
  const tmpLower = join(dirname(lowerPath) === '.' ? '' : dirname(lowerPath), `.ecryptfs-tmp-${randomBytes(6).toString('hex')}`);
  const f = await EcryptfsFile.create(vol.lower, tmpLower, vol.keys, vol.newFileParams(), 0o600);
  try {
    const input = await fsp.open(src, 'r');
    try {
      const buf = Buffer.allocUnsafe(CHUNK);
      for (let pos = 0; ; ) {
        const { bytesRead } = await input.read(buf, 0, CHUNK, pos);
        if (bytesRead === 0) break;
        await f.write(pos, buf.subarray(0, bytesRead));
        pos += bytesRead;
      }
    } finally {
      await input.close();
    }
    await f.close();
    await keepMeta(vol.lower.abs(tmpLower), st, false);
    await vol.lower.rename(tmpLower, lowerPath);
  } catch (e) {
    await f.close().catch(() => undefined);
    await vol.lower.unlink(tmpLower).catch(() => undefined);
    throw e;
  }
}
