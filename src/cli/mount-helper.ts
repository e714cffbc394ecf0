/**
 * /sbin/mount.ecryptfs: what `mount -t ecryptfs SRC DST [-o OPTS]` runs
 * (mount(8) calls it as `mount.ecryptfs SRC DST [-sfnv] [-o OPTS] [-t TYPE]`), and
 * umount.ecryptfs UPPER (umount(8) adds [-nlfvr] [-t TYPE]).
 */
import { EcryptfsError } from '../errors.js';
import { preforkFits, preforkRootDaemon } from '../mount/daemon-fork.js';
import { MOUNT_USAGE, UMOUNT_USAGE } from './help.js';
import { runMain } from './run.js';

// The mount's modules are loaded when needed (dynamic imports): as root the daemon is forked
// first, so that its start overlaps ours (see daemon-fork.ts).
export function mountHelperMain(): void {
  if (preforkFits(process.argv.slice(2))) preforkRootDaemon(false);
  runMain('mount.ecryptfs', async () => {
    const args = process.argv.slice(2);
    const pos: string[] = [];
    let options = '';
    let foreground = false;
    const add = (o: string) => (options = options ? `${options},${o}` : o);
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (a === '-o') add(args[++i] ?? '');
      else if (a.startsWith('-o')) add(a.slice(2));
      else if (a === '-t' || a === '-N') i++;
      else if (a === '--foreground') foreground = true;
      else if (/^-[sfnvr]+$/.test(a)) {
        if (a.includes('r')) add('ro');
      } else if (a.startsWith('-') && a !== '-') throw new EcryptfsError('EINVAL', `unknown argument ${a}\n${MOUNT_USAGE}`);
      else pos.push(a);
    }
    if (pos.length !== 2) {
      process.stderr.write(MOUNT_USAGE);
      return 1;
    }
    const { mountCommand } = await import('./mount.js');
    return mountCommand({ lower: pos[0], upper: pos[1], options, foreground, ecryptfsrc: true });
  });
}

export function umountHelperMain(): void {
  runMain('umount.ecryptfs', async () => {
    const args = process.argv.slice(2);
    const pos: string[] = [];
    let lazy = false;
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (a === '-t' || a === '-N') i++;
      else if (/^-[nlfvr]+$/.test(a)) lazy ||= a.includes('l');
      else pos.push(a);
    }
    if (pos.length !== 1) {
      process.stderr.write(UMOUNT_USAGE);
      return 1;
    }
    const { umountCommand } = await import('./mount.js');
    return umountCommand(pos[0], { lazy });
  });
}
