/**
 * ecryptfs-rewrite-file FILE...: re-encrypt files in place through a mount (a new file key under
 * the mount's current key; files written under passthrough become encrypted), and directories'
 * names. Each file is copied to a temporary name, synced, and renamed over the original, so an
 * interruption never leaves a file half rewritten. Messages follow ecryptfs-utils' script.
 */
import { promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { NodeLowerFs } from '../lower/lowerfs.js';
import { escapeName } from '../volume/names.js';
import { copyXattrs, XattrNotes } from '../volume/tree.js';
import { rawArgs } from './argv.js';
import { runMain } from './run.js';

type Path = string | Buffer;
/**
 * A short temporary name in the same directory (a 143-byte name plus a suffix would be longer
 * than an encrypted name can be).
 */
function temp(p: Path): Buffer {
  const b = Buffer.from(p);
  const slash = b.lastIndexOf(0x2f);
  return Buffer.concat([b.subarray(0, slash + 1), Buffer.from(`.rw${randomBytes(5).toString('hex')}`)]);
}
/** Paths are bytes: user.* xattrs and ACLs are copied through a LowerFs rooted at '/'. */
const rootFs = new NodeLowerFs('/');
/** The path relative to '/' (rootFs's paths). */
function rel(p: Path): Buffer {
  const b = Buffer.from(p);
  return b[0] === 0x2f ? b.subarray(1) : Buffer.concat([Buffer.from(process.cwd().slice(1)), Buffer.from('/'), b]);
}

async function rewriteOne(path: Path, notes: XattrNotes): Promise<string | undefined> {
  const show = escapeName(Buffer.from(path));
  const st = await fsp.lstat(path).catch(() => undefined);
  if (!st) return 'File does not exist';
  if (st.isDirectory()) {
    const t = temp(path);
    try {
      await fsp.rename(path, t);
    } catch {
      return `Could not rename [${show}] -> [${escapeName(t)}]`;
    }
    try {
      await fsp.rename(t, path);
    } catch {
      return `Could not rename [${escapeName(t)}] -> [${show}]`;
    }
    return undefined;
  }
  const t = temp(path);
  try {
    if (st.isSymbolicLink()) await fsp.symlink(await fsp.readlink(path, { encoding: 'buffer' }), t);
    else {
      await fsp.copyFile(path, t);
      const fh = await fsp.open(t, 'r+');
      await fh.sync();
      await fh.close();
    }
    if (process.getuid?.() === 0) await fsp.lchown(t, st.uid, st.gid);
    if (!st.isSymbolicLink()) {
      // copyFile keeps no xattrs: user.* and POSIX ACLs are copied (after the owner, before the mode).
      await copyXattrs(rootFs, rel(path), rootFs, rel(t), notes, show, false);
      await fsp.chmod(t, st.mode & 0o7777);
    }
    await fsp.lutimes(t, st.atime, st.mtime);
  } catch {
    await fsp.rm(t, { force: true });
    return `Could not copy [${show}] -> [${escapeName(t)}]`;
  }
  try {
    await fsp.rename(t, path);
  } catch {
    await fsp.rm(t, { force: true });
    return `Could not rename [${escapeName(t)}] -> [${show}]`;
  }
  return undefined;
}

export async function rewriteFiles(paths: Path[]): Promise<number> {
  let ok = 0;
  const notes = new XattrNotes('the file system');
  for (const [i, p] of paths.entries()) {
    process.stdout.write(`INFO: Rewriting [${i + 1}/${paths.length}] [${escapeName(Buffer.from(p))}] ... `);
    if (Buffer.from(p).equals(Buffer.from('.'))) {
      process.stderr.write('[EXCLUDED]\n');
      continue;
    }
    const err = await rewriteOne(p, notes);
    if (err) {
      process.stdout.write('[FAILED]\n');
      process.stderr.write(`ERROR: ${err}\n`);
      continue;
    }
    process.stdout.write('[OK]\n');
    ok++;
  }
  process.stdout.write(`${ok}/${paths.length} rewrites succeeded\n`);
  for (const n of notes.notes()) process.stderr.write(`NOTE: ${n}\n`);
  return ok === paths.length ? 0 : 1;
}

export function rewriteFileMain(): void {
  runMain('ecryptfs-rewrite-file', () => rewriteFiles(rawArgs()));
}
