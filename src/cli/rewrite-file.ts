/**
 * ecryptfs-rewrite-file FILE...: re-encrypt files in place through a mount (a new file key under
 * the mount's current key; files written under passthrough become encrypted), and directories'
 * names. Each file is copied to a temporary name, synced, and renamed over the original, so an
 * interruption never leaves a file half rewritten. Messages follow ecryptfs-utils' script.
 */
import { closeSync, constants as fsc, openSync, promises as fsp, type Stats } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { openDirPathTrusted } from '../lower/at.js';
import { at, chownNewLink, O_PATH } from '../home/held.js';
import { escapeName } from '../volume/names.js';
import { keptXattr, XattrNotes } from '../volume/tree.js';
import { copyXattrsFd } from '../home/copytree.js';
import { rawArgs } from './argv.js';
import { runMain } from './run.js';

type Path = string | Buffer;
/**
 * The directory holding `p`, opened once (everything after is relative to it), and `p`'s last
 * name. Root follows only root's links on the way: a user's directory in the path swapped for a
 * link would otherwise have root copy, chmod and rename in a directory of the user's choosing.
 */
function holdParent(p: Path): { dir: number; name: Buffer; prefix: Buffer } {
  let b = Buffer.from(p);
  if (b[0] !== 0x2f) b = Buffer.concat([Buffer.from(`${process.cwd()}/`), b]);
  const slash = b.lastIndexOf(0x2f);
  const parent = slash === 0 ? Buffer.from('/') : b.subarray(0, slash);
  const dir = process.getuid?.() === 0 ? openDirPathTrusted(parent) : openSync(parent, O_PATH | fsc.O_DIRECTORY);
  const given = Buffer.from(p);
  return { dir, name: b.subarray(slash + 1), prefix: given.subarray(0, given.lastIndexOf(0x2f) + 1) };
}

async function rewriteOne(path: Path, notes: XattrNotes): Promise<string | undefined> {
  const show = escapeName(Buffer.from(path));
  let held: ReturnType<typeof holdParent>;
  try {
    held = holdParent(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ESTALE') return `[${show}] is reached through a symbolic link that is not root's: not followed (run as root, this tool follows no link a user could change)`;
    return 'File does not exist';
  }
  const { dir, name } = held;
  try {
    const here = at(dir, name);
    const st = await fsp.lstat(here).catch(() => undefined);
    if (!st) return 'File does not exist';
    // A short temporary name in the same directory (a 143-byte name plus a suffix would be longer
    // than an encrypted name can be).
    const tName = Buffer.from(`.rw${randomBytes(5).toString('hex')}`);
    const t = at(dir, tName);
    const tShow = escapeName(Buffer.concat([held.prefix, tName]));
    if (st.isDirectory()) {
      try {
        await fsp.rename(here, t);
      } catch {
        return `Could not rename [${show}] -> [${tShow}]`;
      }
      try {
        await fsp.rename(t, here);
      } catch {
        return `Could not rename [${tShow}] -> [${show}]`;
      }
      return undefined;
    }
    try {
      if (st.isSymbolicLink()) {
        await fsp.symlink(await fsp.readlink(here, { encoding: 'buffer' }), t);
        if (process.getuid?.() === 0) chownNewLink(dir, tName, st.uid, st.gid);
        await fsp.lutimes(t, st.atime, st.mtime);
      } else await copyByDescriptors(here, t, st, notes, show);
    } catch {
      await fsp.rm(t, { force: true });
      return `Could not copy [${show}] -> [${tShow}]`;
    }
    try {
      await fsp.rename(t, here);
    } catch {
      await fsp.rm(t, { force: true });
      return `Could not rename [${tShow}] -> [${show}]`;
    }
    return undefined;
  } finally {
    closeSync(dir);
  }
}

/**
 * The file `from` (regular, the inode `st` was taken of) copied to a new `to`, made here (O_EXCL,
 * no link followed): owner, mode and times are set on the new file's descriptor, never through a
 * name that could have become a link meanwhile.
 */
async function copyByDescriptors(from: Path, to: Path, st: Stats, notes: XattrNotes, show: string): Promise<void> {
  const src = await fsp.open(from, fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK);
  try {
    const now = await src.stat();
    if (!now.isFile() || now.ino !== st.ino || now.dev !== st.dev) throw new Error('not the file that was looked at');
    const dst = await fsp.open(to, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    try {
      await fsp.copyFile(`/proc/self/fd/${src.fd}`, `/proc/self/fd/${dst.fd}`);
      await dst.sync();
      if (process.getuid?.() === 0) await dst.chown(st.uid, st.gid);
      // copyFile keeps no xattrs: user.* and POSIX ACLs are copied (after the owner, before the
      // mode), descriptor to descriptor like the rest.
      for (const r of copyXattrsFd(src.fd, dst.fd, keptXattr)) notes.add(r.code, r.name, show);
      await dst.chmod(st.mode & 0o7777);
      await dst.utimes(st.atime, st.mtime);
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
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
