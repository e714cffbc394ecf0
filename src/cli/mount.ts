/**
 * `ecryptfs mount LOWER UPPER [-o OPTS] [-f]`, `mount.ecryptfs LOWER UPPER [-o OPTS]` (what
 * `mount -t ecryptfs` runs) and `ecryptfs umount UPPER`: the dialogue on the terminal, the
 * mounting itself in mount/launch.ts.
 */
import type { DialogueIO } from '../mount/dialogue.js';
import { mountEcryptfs, type MountArgs, umountEcryptfs } from '../mount/launch.js';
import { ask, askSecret, interactive } from './prompt.js';

function terminalIO(): DialogueIO {
  return {
    interactive: interactive(),
    secret: (p) => askSecret(p, process.stdout),
    line: (p) => ask(p),
    out: (t) => process.stdout.write(t),
  };
}

/** Mount with the dialogue on the terminal ("Mounted eCryptfs" once it is up, unless quiet). */
export const mountCommand = (a: MountArgs): Promise<number> => mountEcryptfs({ ...a, io: terminalIO() });

export const umountCommand = umountEcryptfs;
