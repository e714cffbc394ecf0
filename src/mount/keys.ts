/**
 * Keys for a mount: from a passphrase (both derivations), or by sig from the kernel keyring where
 * ecryptfs-add-passphrase put them (ecryptfs_sig= without key=), as the kernel module does.
 */
import { EcryptfsError } from '../errors.js';
import { parseAuthTok } from '../format/authtok.js';
import { keyringUnavailableReason, readKey, readKeySync } from '../sys/keyring.js';
import { KeyRing } from '../volume/keyring.js';

/** Add every sig of `sigs` that the ring lacks from the kernel keyring; error names the missing one. */
export async function keysFromKernel(ring: KeyRing, sigs: string[]): Promise<void> {
  for (const sig of sigs) {
    if (ring.has(sig)) continue;
    const payload = await readKey(sig).catch(() => undefined);
    if (!payload) {
      // No keyring at all (a container's seccomp profile) is a set-up problem of its own.
      const unavailable = await keyringUnavailableReason();
      if (unavailable) throw new EcryptfsError('ENOKEY', `the key with sig ${sig} cannot be read: ${unavailable}`);
      throw new EcryptfsError('ENOKEY', `no key with sig ${sig} in the user keyring: add it with ecryptfs-add-passphrase${sigs.length > 1 ? ' [--fnek]' : ''} or give key=passphrase`);
    }
    const tok = parseAuthTok(payload);
    ring.add({ sig, key: tok.key, origin: 'raw' });
    payload.fill(0);
  }
}

export { KeyRing };

/**
 * The key named `sig` from the user keyring, for a file of a key the mount was not given (the
 * kernel's ecryptfs_find_auth_tok_for_sig without ecryptfs_mount_auth_tok_only).
 */
export async function kernelKeyFor(sig: string): Promise<Buffer | undefined> {
  const payload = await readKey(sig).catch(() => undefined);
  if (!payload) return undefined;
  try {
    return parseAuthTok(payload).key;
  } finally {
    payload.fill(0);
  }
}

/** Name keys looked up outside the mount's own, for 2 s (a listing asks once, not per name). */
const nameKeys = new Map<string, { key?: Buffer; until: number }>();

/** kernelKeyFor for file names, which are decoded synchronously (the keyring calls are synchronous). */
export function kernelKeyForSync(sig: string): Buffer | undefined {
  const now = Date.now();
  const cached = nameKeys.get(sig);
  if (cached && cached.until > now) return cached.key;
  cached?.key?.fill(0);
  const payload = readKeySync(sig);
  let key: Buffer | undefined;
  try {
    key = payload ? parseAuthTok(payload).key : undefined;
  } catch {
    key = undefined;
  } finally {
    payload?.fill(0);
  }
  nameKeys.set(sig, { key, until: now + 2000 });
  return key;
}
