/**
 * Passphrase -> 64-byte auth-token key and its 16-hex-digit sig (ecryptfs-utils generate_passphrase_sig):
 * 65536 rounds of SHA-512 over salt || passphrase. FNEK_SALT is the ASCII "99887766" ecryptfs-utils
 * really uses (it passes the hex string as raw bytes; CORPUS-RULES §1).
 */
import { createHash } from 'node:crypto';
import { EcryptfsError } from '../errors.js';
export const DEFAULT_SALT = Buffer.from('0011223344556677', 'hex');
export const FNEK_SALT = Buffer.from('99887766', 'latin1');
export function sigOfKey(key: Uint8Array): string {
  return createHash('sha512').update(key).digest().subarray(0, 8).toString('hex');
}
export function deriveKey(passphrase: string | Uint8Array, salt: Uint8Array = DEFAULT_SALT): { key: Buffer; sig: string } {
  const p = typeof passphrase === 'string' ? Buffer.from(passphrase, 'utf8') : passphrase;
  if (p.length > 64) throw new EcryptfsError('EINVAL', 'passphrase longer than 64 bytes');
  let h = createHash('sha512').update(salt).update(p).digest();
  for (let i = 1; i < 65536; i++) h = createHash('sha512').update(h).digest();
  return { key: h, sig: sigOfKey(h) };
}
/** The same, yielding to the event loop every 4096 rounds (a derivation takes ~100 ms). */
export async function deriveKeyAsync(passphrase: string | Uint8Array, salt: Uint8Array = DEFAULT_SALT): Promise<{ key: Buffer; sig: string }> {
  const p = typeof passphrase === 'string' ? Buffer.from(passphrase, 'utf8') : passphrase;
  if (p.length > 64) throw new EcryptfsError('EINVAL', 'passphrase longer than 64 bytes');
  let h = createHash('sha512').update(salt).update(p).digest();
  for (let i = 1; i < 65536; i++) {
    h = createHash('sha512').update(h).digest();
    if ((i & 4095) === 0) await new Promise((r) => setImmediate(r));
  }
  return { key: h, sig: sigOfKey(h) };
}
