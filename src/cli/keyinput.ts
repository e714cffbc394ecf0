/**
 * Key input shared by every command: --passphrase-file, --fnek-passphrase-file,
 * --wrapped-passphrase with --login-password-file, or a masked prompt on a terminal.
 * Passphrases are never taken from argv.
 */
import type { Command } from 'commander';
import { EcryptfsError } from '../errors.js';
import type { ResolvedKeys } from '../volume/keysource.js';

export interface KeyOptions {
  passphraseFile?: string;
  fnekPassphraseFile?: string;
  wrappedPassphrase?: string;
  loginPasswordFile?: string;
}

export function addKeyOptions(cmd: Command): Command {
  return cmd
    .option('--passphrase-file <file>', 'file whose first line is the mount passphrase')
    .option('--fnek-passphrase-file <file>', 'file whose first line is a separate filename-encryption passphrase')
    .option('--wrapped-passphrase <file>', 'wrapped-passphrase file (e.g. ~/.ecryptfs/wrapped-passphrase)')
    .option('--login-password-file <file>', 'file whose first line is the password that wraps --wrapped-passphrase');
}

export async function keysFromOptions(o: KeyOptions): Promise<ResolvedKeys> {
  // Loaded here, not with the options: `ecryptfs mount` defines these options but never runs this.
  const [{ readSecretFile, resolveKeys }, { askSecret }] = await Promise.all([import('../volume/keysource.js'), import('./prompt.js')]);
  const fnek = o.fnekPassphraseFile ? await readSecretFile(o.fnekPassphraseFile) : undefined;
  try {
    if (o.wrappedPassphrase) {
      const login = o.loginPasswordFile ? await readSecretFile(o.loginPasswordFile) : await askSecret('Login password: ');
      try {
        return await resolveKeys({ wrappedPassphraseFile: o.wrappedPassphrase, loginPassword: login, fnekPassphrase: fnek });
      } finally {
        login.fill(0);
      }
    }
    if (o.loginPasswordFile) throw new EcryptfsError('EINVAL', '--login-password-file goes with --wrapped-passphrase');
    const pass = o.passphraseFile ? await readSecretFile(o.passphraseFile) : await askSecret('Passphrase: ');
    if (pass.length === 0) throw new EcryptfsError('EINVAL', 'empty passphrase');
    try {
      return await resolveKeys({ passphrase: pass, fnekPassphrase: fnek });
    } finally {
      pass.fill(0);
    }
  } finally {
    fnek?.fill(0);
  }
}
