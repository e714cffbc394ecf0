/**
 * ecryptfs-find PATH: the other layer's name of a file. A lower (ECRYPTFS_FNEK_ENCRYPTED.) name
 * is looked up in the clear views of the mounted eCryptfs filesystems, a clear name in their
 * lower directories, by inode number, as ecryptfs-utils' script does (our mount reports the lower
 * inode numbers, as the kernel module does). Both kernel (ecryptfs) and ecryptfs-ts
 * (fuse.ecryptfs) mounts are searched.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { mountsOfType, readMounts } from '../sys/mounts.js';
import { runMain } from './run.js';

async function findInode(dir: string, ino: number, out: string[]): Promise<void> {
  const entries = await fsp.readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    const p = join(dir, e.name);
    const st = await fsp.lstat(p).catch(() => undefined);
    if (!st) continue;
    if (st.ino === ino) out.push(p);
    if (e.isDirectory()) await findInode(p, ino, out);
  }
}

export async function findMain(args: string[]): Promise<number> {
  const target = args[0];
  const st = target ? await fsp.lstat(target).catch(() => undefined) : undefined;
  if (!st) {
    process.stderr.write(`ERROR: [${target ?? ''}] not found\n`);
    return 1;
  }
  const decrypt = target.includes('ECRYPTFS_FNEK_ENCRYPTED.');
  const mounts = mountsOfType(await readMounts(), ['ecryptfs', 'fuse.ecryptfs']);
  const found: string[] = [];
  for (const m of mounts) await findInode(decrypt ? m.target : m.source, st.ino, found);
  for (const f of found) process.stdout.write(`${f}\n`);
  return 0;
}

export function findToolMain(): void {
  runMain('ecryptfs-find', () => findMain(process.argv.slice(2)));
}
