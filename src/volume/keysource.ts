/**
 * Where a volume's keys come from: passphrases, a wrapped-passphrase file and the password that
 * wraps it, or an ~/.ecryptfs-style directory (wrapped-passphrase + Private.sig). Every source
 * ends up as passphrases in a KeyRing; Private.sig, when present, names the file and FNEK sigs.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { EcryptfsError } from '../errors.js';
import { unwrapPassphrase } from '../format/wrapped.js';
import { KeyRing } from './keyring.js';

export type KeySource =
  | { passphrase: string | Uint8Array; fnekPassphrase?: string | Uint8Array }
  | { wrappedPassphraseFile: string; loginPassword: string | Uint8Array; fnekPassphrase?: string | Uint8Array }
  | { ecryptfsDir: string; loginPassword: string | Uint8Array };

export interface ResolvedKeys {
  ring: KeyRing;
  /** Sig for new files' FEKs (the mount passphrase's key). */
  fileSig: string;
  /** FNEK sig when the source names one (second passphrase, or Private.sig line 2). */
  fnekSig?: string;
}

/** Read a secret from a file: its first line, without the line ending (as ecryptfs-utils reads stdin). */
export async function readSecretFile(path: string): Promise<Buffer> {
  const b = await fsp.readFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new EcryptfsError('EINVAL', `cannot read the secret file: ${e.code ?? e.message}`, path);
  });
  const out = firstLine(b);
  b.fill(0);
  return out;
}

/** A copy of the first line of `b`, without its line ending. */
export function firstLine(b: Buffer): Buffer {
  let end = b.indexOf(0x0a);
  if (end < 0) end = b.length;
  if (end > 0 && b[end - 1] === 0x0d) end--;
  return Buffer.from(b.subarray(0, end));
}

/**
 * Parse Private.sig or ALIAS.sig as mount.ecryptfs_private's fetch_sig reads it: the first line
 * is the file key's sig, the second (if any) the FNEK's, each 16 hex digits cut at the first blank;
 * lines after the second are not read. The sigs come back in lower case, as the keyring names keys.
 */
export function parseSigFile(text: string, path = 'Private.sig'): string[] {
  const [first, second] = text.split('\n').slice(0, 2).map((l) => l.trim().split(/\s/)[0]);
  if (!first) throw new EcryptfsError('ECORRUPT', 'Missing file encryption signature: the first line must be the file key\'s sig', path);
  const sigs = second ? [first, second] : [first];
  for (const s of sigs) if (!/^[0-9a-fA-F]{16}$/.test(s)) throw new EcryptfsError('ECORRUPT', `not a key signature: "${s}" (16 hex digits expected)`, path);
  return sigs.map((s) => s.toLowerCase());
}

export async function resolveKeys(src: KeySource, ring = new KeyRing()): Promise<ResolvedKeys> {
  if ('passphrase' in src) {
    const [file] = await ring.addPassphrase(src.passphrase);
    let fnekSig: string | undefined;
    if (src.fnekPassphrase !== undefined) fnekSig = (await ring.addPassphrase(src.fnekPassphrase))[0].sig;
    return { ring, fileSig: file.sig, fnekSig };
  }
  if ('wrappedPassphraseFile' in src) {
    const wrapped = await fsp.readFile(src.wrappedPassphraseFile);
    let pass: Buffer;
    try {
      pass = unwrapPassphrase(wrapped, src.loginPassword);
    } catch (e) {
      throw e instanceof EcryptfsError ? e.withPath(src.wrappedPassphraseFile) : e;
    }
    try {
      return await resolveKeys({ passphrase: pass, fnekPassphrase: src.fnekPassphrase }, ring);
    } finally {
      pass.fill(0);
    }
  }
  const wrappedFile = join(src.ecryptfsDir, 'wrapped-passphrase');
  const r = await resolveKeys({ wrappedPassphraseFile: wrappedFile, loginPassword: src.loginPassword }, ring);
  const sigPath = join(src.ecryptfsDir, 'Private.sig');
  const text = await fsp.readFile(sigPath, 'utf8').catch(() => undefined);
  if (text === undefined) return r;
  const [fileSig, fnekSig] = parseSigFile(text, sigPath);
  if (!ring.has(fileSig)) {
    throw new EcryptfsError('ENOKEY', `the unwrapped passphrase does not give the key ${fileSig} named in Private.sig`, sigPath);
  }
  return { ring, fileSig, fnekSig };
}
