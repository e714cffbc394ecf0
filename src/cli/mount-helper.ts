/**
 * /sbin/mount.ecryptfs: what `mount -t ecryptfs SRC DST [-o OPTS]` runs
 * (mount(8) calls it as `mount.ecryptfs SRC DST [-sfnv] [-o OPTS] [-t TYPE]`).
 */
import { mountCommand, umountCommand } from './mount.js';
import { runMain } from './run.js';

export function mountHelperMain(): void {
  const args = process.argv.slice(2);
  const pos: string[] = [];
  let options = '';
  let foreground = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-o') options = options ? `${options},${args[++i] ?? ''}` : (args[++i] ?? '');
    else if (a.startsWith('-o')) options = a.slice(2);
    else if (a === '-t' || a === '-N') i++;
    else if (a === '--foreground') foreground = true;
    else if (/^-[sfnvr]+$/.test(a)) {
      if (a.includes('r')) options = options ? `${options},ro` : 'ro';
    } else pos.push(a);
  }
  if (pos.length !== 2) {
    process.stderr.write('Usage: mount -t ecryptfs [lower directory] [ecryptfs mount point]\n');
    process.exitCode = 1;
    return;
  }
  runMain('mount.ecryptfs', () => mountCommand({ lower: pos[0], upper: pos[1], options, foreground }));
}

export function umountHelperMain(): void {
  const pos = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  runMain('umount.ecryptfs', () => umountCommand(pos[0]));
}
