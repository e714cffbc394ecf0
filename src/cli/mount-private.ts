/**
 * mount.ecryptfs_private [ALIAS] and umount.ecryptfs_private [-f] [-d] [ALIAS]: ecryptfs-utils'
 * helpers, run as the user. Their arguments here; what they do is home/private-helper.ts.
 */
import { mountAlias, umountAlias } from '../home/private-helper.js';
import { MOUNT_PRIVATE_HELPER_USAGE, UMOUNT_PRIVATE_HELPER_USAGE } from './help.js';
import { terminalToolIO } from './prompt.js';
import { runMain } from './run.js';

/** getopt over `optstr` letters; returns the flags and the ALIAS, or undefined (usage printed). */
function parseArgs(args: string[], letters: string, usage: string): { flags: Set<string>; alias?: string } | undefined {
  const flags = new Set<string>();
  const pos: string[] = [];
  for (const a of args) {
    if (/^-[a-zA-Z]+$/.test(a)) {
      for (const c of a.slice(1)) {
        if (!letters.includes(c)) {
          process.stderr.write(usage);
          return undefined;
        }
        flags.add(c);
      }
    } else pos.push(a);
  }
  if (pos.length > 1) {
    process.stderr.write(usage);
    return undefined;
  }
  return { flags, alias: pos[0] };
}

export async function mountPrivateHelper(args: string[]): Promise<number> {
  const a = parseArgs(args, '', MOUNT_PRIVATE_HELPER_USAGE);
  if (!a) return 1;
  return mountAlias(terminalToolIO, a.alias);
}

export async function umountPrivateHelper(args: string[]): Promise<number> {
  const a = parseArgs(args, 'fd', UMOUNT_PRIVATE_HELPER_USAGE);
  if (!a) return 1;
  return umountAlias(terminalToolIO, a.alias, a.flags.has('f'), a.flags.has('d'));
}

export const mountPrivateHelperMain = () => runMain('mount.ecryptfs_private', () => mountPrivateHelper(process.argv.slice(2)));
export const umountPrivateHelperMain = () => runMain('umount.ecryptfs_private', () => umountPrivateHelper(process.argv.slice(2)));
