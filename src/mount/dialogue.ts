/**
 * The mount.ecryptfs dialogue: ask for what the -o options leave open, in the real helper's
 * order, with its prompts and defaults (ECRYPTFS-TOOLS §3.3, the seed document's session),
 * then the "Attempting to mount" list and the sig-cache check.
 */
import { EcryptfsError } from '../errors.js';
import { CIPHERS } from '../format/ciphers.js';
import { CIPHER_NAMES, type CipherName } from '../crypto/types.js';
import { checkKeyBytes, helperOptionList, type MountOptions } from './options.js';

export interface DialogueIO {
  /** Ask without echo. */
  secret(prompt: string): Promise<Buffer>;
  /** Ask a line (returns '' for just Enter). */
  line(prompt: string): Promise<string>;
  out(text: string): void;
  /** false when nothing may be asked (verbosity=0 or no terminal): defaults are used. */
  interactive: boolean;
}

async function choose(io: DialogueIO, title: string, items: string[], values: string[], def: string): Promise<string> {
  if (!io.interactive) return def;
  for (let tries = 0; tries < 5; tries++) {
    io.out(`${title}: \n`);
    items.forEach((t, i) => io.out(`${i + 1}) ${t}\n`));
    const a = (await io.line(`Selection [${def}]: `)).trim();
    io.out('\n');
    if (a === '') return def;
    const n = Number(a);
    if (Number.isInteger(n) && n >= 1 && n <= values.length) return values[n - 1];
    if (values.includes(a)) return a;
    io.out(`Invalid selection\n`);
  }
  throw new EcryptfsError('EINVAL', `no valid answer to "${title}"`);
}

async function yesNo(io: DialogueIO, prompt: string, def: boolean): Promise<boolean> {
  if (!io.interactive) return def;
  for (let tries = 0; tries < 5; tries++) {
    const a = (await io.line(`${prompt} (y/n) [${def ? 'y' : 'n'}]: `)).trim().toLowerCase();
    if (a === '') return def;
    if (a === 'y' || a === 'yes') return true;
    if (a === 'n' || a === 'no') return false;
  }
  throw new EcryptfsError('EINVAL', `no valid answer to "${prompt}"`);
}

/** Ask a yes/no question that must be answered with the words yes or no. */
export async function yesNoWord(io: DialogueIO, prompt: string): Promise<boolean> {
  for (let tries = 0; tries < 5; tries++) {
    const a = (await io.line(prompt)).trim().toLowerCase();
    if (a === 'yes') return true;
    if (a === 'no') return false;
    io.out(`Please answer yes or no.\n`);
  }
  return false;
}

export interface DialogueResult {
  options: MountOptions;
  /** The passphrase, when one was given or typed (the caller derives the key and wipes it). */
  passphrase?: Buffer;
}

/**
 * Fill in `o` (in place) by asking. `fileSigOf` derives the sig of a passphrase (for the FNEK
 * default). Returns the options and the passphrase.
 */
export async function runDialogue(
  o: MountOptions,
  io: DialogueIO,
  fileSigOf: (pass: Buffer) => Promise<string>,
  readPassFile: (path: string) => Promise<Buffer>,
): Promise<DialogueResult> {
  let passphrase = o.passphrase;
  if (!passphrase && o.passphraseFile) passphrase = await readPassFile(o.passphraseFile);
  if (!passphrase && o.sigs.length === 0) {
    if (!io.interactive) throw new EcryptfsError('EINVAL', 'no passphrase: give key=passphrase:passphrase_passwd_file=FILE or ecryptfs_sig= of a key in the keyring');
    passphrase = await io.secret('Passphrase: ');
    if (passphrase.length === 0) throw new EcryptfsError('EINVAL', 'empty passphrase');
  }
  if (passphrase) {
    if (passphrase.length > 64) throw new EcryptfsError('EINVAL', 'passphrase is longer than 64 bytes');
    const sig = await fileSigOf(passphrase);
    if (!o.sigs.includes(sig)) o.sigs.unshift(sig);
  }
  if (!o.cipher) {
    o.cipher = (await choose(
      io,
      'Select cipher',
      CIPHER_NAMES.map((c) => `${c}: blocksize = ${CIPHERS[c].menuBlockSize}; min keysize = ${CIPHERS[c].minKeyBytes}; max keysize = ${CIPHERS[c].maxKeyBytes} (loaded)`),
      [...CIPHER_NAMES],
      'aes',
    )) as CipherName;
  }
  checkKeyBytes(o);
  if (o.keyBytes === undefined) {
    const sizes = CIPHERS[o.cipher].keySizes.map(String);
    o.keyBytes = Number(await choose(io, 'Select key bytes', sizes, sizes, sizes[0]));
  }
  checkKeyBytes(o);
  if (o.passthrough === undefined) o.passthrough = await yesNo(io, 'Enable plaintext passthrough', false);
  if (o.enableFilenameCrypto === undefined) o.enableFilenameCrypto = o.fnekSig !== undefined ? true : await yesNo(io, 'Enable filename encryption', false);
  if (o.enableFilenameCrypto && !o.fnekSig) {
    const def = o.sigs[0];
    if (io.interactive) {
      const a = (await io.line(`Filename Encryption Key (FNEK) Signature [${def}]: `)).trim();
      if (a !== '' && !/^[0-9a-f]{16}$/.test(a)) throw new EcryptfsError('EINVAL', `"${a}" is not a 16-hex-digit key signature`);
      o.fnekSig = a || def;
    } else o.fnekSig = def;
  }
  if (!o.enableFilenameCrypto) o.fnekSig = undefined;
  o.unlinkSigs = true;
  io.out('Attempting to mount with the following options:\n');
  for (const line of helperOptionList(o)) io.out(`  ${line}\n`);
  return { options: o, passphrase };
}
