/**
 * ecryptfs-manager: the key-management menu the seed names as the workaround for
 * "ecryptfs-mount-private fails to initialize ecryptfs keys". Same menu as ecryptfs-utils'
 * (items 1-4), plus listing and removing keys. Unlike the real one, answers can be scripted on
 * stdin, one a line (passphrases too), when stdin is not a terminal.
 */
import { buildAuthTok } from '../format/authtok.js';
import { deriveKeyAsync, DEFAULT_SALT, FNEK_SALT } from '../format/kdf.js';
import { addKey, findKey, keyringAvailable, linkUserIntoSession, listSigs, unlinkKey } from '../keyring/kernel.js';
import { ask, askSecret, interactive } from './prompt.js';
import { runMain } from './run.js';

interface Answers {
  line(prompt: string): Promise<string | undefined>;
  secret(prompt: string): Promise<Buffer | undefined>;
}

async function answers(): Promise<Answers> {
  if (interactive()) return { line: (p) => ask(p), secret: (p) => askSecret(p, process.stdout) };
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const lines = Buffer.concat(chunks).toString('utf8').split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  const next = (p: string) => {
    process.stdout.write(p);
    const l = lines.shift();
    process.stdout.write('\n');
    return l?.replace(/\r$/, '');
  };
  return { line: async (p) => next(p), secret: async (p) => {
    const l = next(p);
    return l === undefined ? undefined : Buffer.from(l, 'utf8');
  } };
}

const MENU = '\neCryptfs key management menu\n-------------------------------\n\t1. Add passphrase key to keyring\n\t2. Add public key to keyring\n\t3. Generate new public/private keypair\n\t4. Exit\n\t5. List keys in the user keyring\n\t6. Remove a key from the user keyring\n\n';

async function addPassphraseKey(a: Answers): Promise<void> {
  const pass = await a.secret('\tMount-wide passphrase: ');
  if (!pass || pass.length === 0 || pass.length > 64) {
    process.stdout.write('Error: the passphrase must be 1 to 64 bytes\n');
    return;
  }
  const fnek = ((await a.line('\tAdd the filename encryption key (FNEK) too? (y/n) [y]: ')) ?? '').trim().toLowerCase();
  const salts = fnek === 'n' || fnek === 'no' ? [DEFAULT_SALT] : [DEFAULT_SALT, FNEK_SALT];
  try {
    for (const salt of salts) {
      const k = await deriveKeyAsync(pass, salt);
      const added = await addKey(k.sig, buildAuthTok(k.key, k.sig, salt));
      k.key.fill(0);
      process.stdout.write(added ? `Added key to keyring with signature [${k.sig}].\n` : `Key with signature [${k.sig}] already in the keyring.\n`);
    }
  } finally {
    pass.fill(0);
  }
}

export async function managerMain(): Promise<number> {
  if (!(await keyringAvailable())) {
    process.stderr.write('Error: the kernel keyring is not available (keyctl from keyutils is needed)\n');
    return 1;
  }
  // As the real tool validates the keyring first: link @u into @s (LP #1377924).
  await linkUserIntoSession();
  const a = await answers();
  for (let invalid = 0; invalid < 16; ) {
    process.stdout.write(MENU);
    const sel = await a.line('Make selection: ');
    if (sel === undefined) return 0;
    switch (sel.trim()) {
      case '1':
        await addPassphraseKey(a);
        break;
      case '2':
      case '3':
        process.stdout.write('Public-key modules are not supported: ecryptfs-ts uses passphrase keys only.\n');
        break;
      case '4':
        return 0;
      case '5': {
        const sigs = await listSigs();
        process.stdout.write(sigs.length ? sigs.map((s) => `\t[${s}]\n`).join('') : '\tNo eCryptfs keys in the user keyring.\n');
        break;
      }
      case '6': {
        const sig = ((await a.line('\tSignature of the key to remove: ')) ?? '').trim();
        if (!/^[0-9a-f]{16}$/.test(sig) || (await findKey(sig)) === undefined) process.stdout.write(`No key with signature [${sig}] in the user keyring.\n`);
        else if (await unlinkKey(sig)) process.stdout.write(`Removed key with signature [${sig}].\n`);
        break;
      }
      default:
        process.stdout.write('Invalid selection\n');
        invalid++;
    }
  }
  return 1;
}

export function managerToolMain(): void {
  runMain('ecryptfs-manager', managerMain);
}
