/**
 * The mount table: /proc/self/mounts (the fstab-like format /proc/mounts links to), one line a
 * mount, "SOURCE TARGET FSTYPE OPTIONS 0 0", in the order the mounts were made (the last entry
 * for a path is the one on top). The kernel writes a space, tab, newline and backslash in a field
 * as \040, \011, \012 and \134 (seq_file's mangle); fields here are unescaped. The one place
 * that reads it: it knows nothing of eCryptfs.
 */
import { promises as fsp, readFileSync } from 'node:fs';

export const MOUNT_TABLE = '/proc/self/mounts';

export interface MountEntry {
  source: string;
  target: string;
  fstype: string;
  options: string;
}

/** A field as the kernel (and getmntent(3)) escapes it: \ooo for space, tab, newline, backslash. */
export const unescapeMountField = (s: string): string => s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));

/** The entries of a mount table's text; lines with fewer than three fields are skipped. */
export function parseMounts(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 3) continue;
    out.push({ source: unescapeMountField(f[0]), target: unescapeMountField(f[1]), fstype: f[2], options: f[3] ?? '' });
  }
  return out;
}

/** The mount table (`table`: another file of the same format, e.g. a copied system's). Throws when it cannot be read. */
export async function readMounts(table = MOUNT_TABLE): Promise<MountEntry[]> {
  return parseMounts(await fsp.readFile(table, 'utf8'));
}

export function readMountsSync(table = MOUNT_TABLE): MountEntry[] {
  return parseMounts(readFileSync(table, 'utf8'));
}

/** The mount on top at `path` (compared as written, not resolved), from `entries`. */
export function mountAt(entries: MountEntry[], path: string): MountEntry | undefined {
  let top: MountEntry | undefined;
  for (const e of entries) if (e.target === path) top = e;
  return top;
}

/** The same mounts with their device numbers: "ID PARENT MAJOR:MINOR ROOT TARGET ...". */
export const MOUNT_INFO = '/proc/self/mountinfo';

/**
 * The device ("MAJOR:MINOR") of the mount on top at `path` (compared as written) as the kernel
 * records it: unlike a stat of the path, nothing is resolved, so no link swapped in on the way
 * can point it at another filesystem.
 */
export function mountDevAt(path: string, text = readFileSync(MOUNT_INFO, 'utf8')): string | undefined {
  let dev: string | undefined;
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length >= 5 && unescapeMountField(f[4]) === path) dev = f[2];
  }
  return dev;
}

/** Is something mounted on `path`? */
export async function isMountPoint(path: string): Promise<boolean> {
  return mountAt(await readMounts(), path) !== undefined;
}

/** The mounts whose type is one of `fstypes`, in table order. */
export function mountsOfType(entries: MountEntry[], fstypes: readonly string[]): MountEntry[] {
  return entries.filter((e) => fstypes.includes(e.fstype));
}
