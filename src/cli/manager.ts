/**
 * ecryptfs-manager: the key-management menu the seed names as the workaround for
 * "ecryptfs-mount-private fails to initialize ecryptfs keys". Items 1-4 and their dialogue are
 * ecryptfs-utils 111's; 5 (list) and 6 (remove) are added after them so that answers written for
 * the real tool keep their meaning. Item 1 also offers the FNEK (salt "99887766"), which a
 * Private directory with encrypted names needs and the real tool never adds. When stdin is not a
 * terminal, answers (passphrases too) are read from it one a line and never echoed; the real
 * tool reads passphrases from the terminal only and spins on "Invalid selection" at end of input.
 */
import { buildAuthTok } from '../format/authtok.js';
import { deriveKeyAsync, DEFAULT_SALT, FNEK_SALT } from '../format/kdf.js';
import { EcryptfsError } from '../errors.js';
import { addKey, findKey, keyringAvailable, keyringUnavailableReason, linkUserIntoSession, listSigs, unlinkKey } from '../sys/keyring.js';
import { ask, askSecret, interactive } from './prompt.js';
import { runMain } from './run.js';

/** Where answers come from: undefined means end of input. */
export interface Answers {
  line(prompt: string): Promise<string | undefined>;
  secret(prompt: string): Promise<Buffer | undefined>;
}

/** Answers from a script: one a line; the newline a terminal would echo is written after each prompt. */
export function scriptedAnswers(text: string, out: (s: string) => void): Answers {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const next = (p: string) => {
    out(p);
    out('\n');
    return lines.shift()?.replace(/\r$/, '');
  };
  return {
    line: async (p) => next(p),
    secret: async (p) => {
      const l = next(p);
      return l === undefined ? undefined : Buffer.from(l, 'utf8');
    },
  };
}

async function stdinAnswers(): Promise<Answers> {
  if (interactive()) {
    return {
      line: (p) => ask(p),
      // The real tool prompts on stdout; so do we, with echo off. `read` redraws its prompt's
      // line, so leading blank lines and the newline after the answer are written here.
      secret: async (p) => {
        process.stdout.write(/^\n*/.exec(p)![0]);
        const b = await askSecret(p.replace(/^\n+/, ''), process.stdout);
        process.stdout.write('\n');
        return b;
      },
    };
  }
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return scriptedAnswers(Buffer.concat(chunks).toString('utf8'), (s) => process.stdout.write(s));
}

export const MENU =
  '\neCryptfs key management menu\n-------------------------------\n' +
  '\t1. Add passphrase key to keyring\n\t2. Add public key to keyring\n\t3. Generate new public/private keypair\n\t4. Exit\n' +
  '\t5. List eCryptfs keys in the user keyring\n\t6. Remove a key from the user keyring\n\n';

/** Wipe a secret buffer. */
const wipe = (b: Buffer | undefined) => b?.fill(0);

async function addPassphraseKey(a: Answers, out: (s: string) => void): Promise<void> {
  const pass = await a.secret('\n\tMount-wide passphrase: ');
  const confirm = await a.secret('\tConfirm passphrase: ');
  try {
    if (!pass || !confirm || !pass.equals(confirm)) {
      out('Passphrase mismatch. Aborting mount\n');
      return;
    }
    if (pass.length === 0 || pass.length > 64) {
      out('Invalid passphrase. Aborting mount.\n(the passphrase must be 1 to 64 bytes)\n');
      return;
    }
    out('\tUsing the default salt value\n');
    const fnek = ((await a.line('\tAlso add the filename encryption key (FNEK, salt 99887766)? (y/n) [y]: ')) ?? '').trim().toLowerCase();
    const salts = fnek === 'n' || fnek === 'no' ? [DEFAULT_SALT] : [DEFAULT_SALT, FNEK_SALT];
    for (const salt of salts) {
      const k = await deriveKeyAsync(pass, salt);
      try {
        const added = await addKey(k.sig, buildAuthTok(k.key, k.sig, salt));
        out(added ? `\nAdded key to keyring with signature [${k.sig}].\n` : `\nThat key was already in the keyring.\n(signature [${k.sig}])\n`);
      } finally {
        k.key.fill(0);
      }
    }
    out('\n');
  } finally {
    wipe(pass);
    wipe(confirm);
  }
}

export async function manager(a: Answers, out: (s: string) => void): Promise<number> {
  if (!(await keyringAvailable())) {
    throw new EcryptfsError('EINVAL', (await keyringUnavailableReason()) ?? 'the kernel keyring is not available');
  }
  // The real tool validates the keyring first; linking @u into @s is what makes keys added
  // here visible to mounts from this session (LP #1377924).
  await linkUserIntoSession();
  out(MENU);
  for (;;) {
    const sel = await a.line('Make selection: ');
    if (sel === undefined) return 0; // end of a script: as if 4 was chosen
    let redraw = true;
    switch (sel.trim()) {
      case '1':
        await addPassphraseKey(a, out);
        break;
      case '2':
      case '3':
        out('\nPublic-key modules (tspi, openssl, gpg, pkcs11) are not supported: ecryptfs-ts uses passphrase keys only.\n');
        break;
      case '4':
        return 0;
      case '5': {
        const sigs = await listSigs();
        out(sigs.length ? `\nKeys in the user keyring (signature):\n${sigs.map((s) => `\t[${s}]\n`).join('')}` : '\nNo eCryptfs keys in the user keyring.\n');
        break;
      }
      case '6': {
        const sig = ((await a.line('\n\tSignature of the key to remove: ')) ?? '').trim().replace(/^\[(.*)\]$/, '$1');
        if (!/^[0-9a-f]{16}$/.test(sig)) out(`Not a key signature: [${sig}] (16 hex digits, as option 5 lists them)\n`);
        else if ((await findKey(sig)) === undefined) out(`No key with signature [${sig}] in the user keyring.\n`);
        else if (await unlinkKey(sig)) out(`Removed key with signature [${sig}] from the user keyring.\n`);
        else out(`Could not remove the key with signature [${sig}] (keyctl unlink failed).\n`);
        break;
      }
      default:
        // As the real tool: no menu redraw after a bad choice.
        out('Invalid selection\n\n');
        redraw = false;
    }
    if (redraw) out(MENU);
  }
}

export function managerToolMain(): void {
  runMain('ecryptfs-manager', async () => manager(await stdinAnswers(), (s) => process.stdout.write(s)));
}
