/**
 * ecryptfs-rewrite-file FILE...: re-encrypt files in place through a mount (a new file key under
 * the mount's current key; files written under passthrough become encrypted), and directories'
 * names. Each file is copied to a temporary name, synced, and renamed over the original, so an
 * interruption never leaves a file half rewritten. Messages follow ecryptfs-utils' script.
 */
import { promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { runMain } from './run.js';

const temp = (p: string) => `${p}.${randomBytes(5).toString('hex')}`;

async function rewriteOne(path: string): Promise<string | undefined> {
  const st = await fsp.lstat(path).catch(() => undefined);
  if (!st) return 'File does not exist';
  if (st.isDirectory()) {
    const t = temp(path);
    try {
      await fsp.rename(path, t);
    } catch {
      return `Could not rename [${path}] -> [${t}]`;
    }
    try {
      await fsp.rename(t, path);
    } catch {
      return `Could not rename [${t}] -> [${path}]`;
    }
    return undefined;
  }
  const t = temp(path);
  try {
    if (st.isSymbolicLink()) await fsp.symlink(await fsp.readlink(path), t);
    else {
      await fsp.copyFile(path, t);
      const fh = await fsp.open(t, 'r+');
      await fh.sync();
      await fh.close();
      await fsp.chmod(t, st.mode & 0o7777);
    }
    if (process.getuid?.() === 0) await fsp.lchown(t, st.uid, st.gid);
    await fsp.lutimes(t, st.atime, st.mtime);
  } catch {
    await fsp.rm(t, { force: true });
    return `Could not copy [${path}] -> [${t}]`;
  }
  try {
    await fsp.rename(t, path);
  } catch {
    await fsp.rm(t, { force: true });
    return `Could not rename [${t}] -> [${path}]`;
  }
  return undefined;
}

export async function rewriteFiles(paths: string[]): Promise<number> {
  let ok = 0;
  for (const [i, p] of paths.entries()) {
    process.stdout.write(`INFO: Rewriting [${i + 1}/${paths.length}] [${p}] ... `);
    if (p === '.') {
      process.stderr.write('[EXCLUDED]\n');
      continue;
    }
    const err = await rewriteOne(p);
    if (err) {
      process.stdout.write('[FAILED]\n');
      process.stderr.write(`ERROR: ${err}\n`);
      continue;
    }
    process.stdout.write('[OK]\n');
    ok++;
  }
  process.stdout.write(`${ok}/${paths.length} rewrites succeeded\n`);
  return ok === paths.length ? 0 : 1;
}

export function rewriteFileMain(): void {
  runMain('ecryptfs-rewrite-file', () => rewriteFiles(process.argv.slice(2)));
}
