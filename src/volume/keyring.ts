/**
 * The keys a volume can use, by signature: 64-byte auth-token keys (session key encryption
 * keys) derived from passphrases. A file header or a Tag 70 name names the key it needs by sig,
 * so every candidate derivation of every passphrase the user gives is put here and the right one
 * is picked by sig (ECRYPTFS-FORMAT §5).
 */
import { createBlockCipher } from '../crypto/blockcipher.js';
import type { BlockCipher, CipherName } from '../crypto/types.js';
import { deriveKey, deriveKeyAsync, DEFAULT_SALT, FNEK_SALT } from '../format/kdf.js';

export interface AuthKey {
  sig: string;
  key: Buffer;
  /** How the key was made: from a passphrase with the default salt, the FNEK salt, or given raw. */
  origin: 'passphrase' | 'fnek' | 'raw';
}

export class KeyRing {
  private readonly keys = new Map<string, AuthKey>();

  /**
   * Where a key the volume was not given is looked up when a file names it: the kernel module
   * searches the user's keyring for it unless the mount has ecryptfs_mount_auth_tok_only. None by
   * default (only the keys given). The key it returns is used for that open and then wiped.
   */
  outside?: (sig: string) => Promise<Buffer | undefined>;

  /**
   * The same for a file name's key (Tag 70 names are decoded synchronously). The key returned
   * stays the lookup's own (it may cache it briefly): the volume never keeps or wipes it.
   */
  outsideSync?: (sig: string) => Buffer | undefined;

  /** Ciphers keyed with a key's first bytes, for wrapping new files' keys (see wrapCipher). */
  private readonly wrappers = new Map<string, BlockCipher>();

  /**
   * The cipher that wraps file keys of `keyBytes` bytes with key `sig`, made once: every create
   * wraps its new file key, and a cipher set-up per create cost ~3 us of its ~40.
   */
  wrapCipher(sig: string, cipher: CipherName, keyBytes: number): BlockCipher | undefined {
    const k = this.keys.get(sig);
    if (!k) return undefined;
    const id = `${sig}/${cipher}/${keyBytes}`;
    let c = this.wrappers.get(id);
    if (!c) {
      c = createBlockCipher(cipher, k.key.subarray(0, keyBytes));
      this.wrappers.set(id, c);
    }
    return c;
  }

  add(k: AuthKey): AuthKey {
    const have = this.keys.get(k.sig);
    if (have) return have;
    this.keys.set(k.sig, k);
    return k;
  }

  get(sig: string): AuthKey | undefined {
    return this.keys.get(sig);
  }

  has(sig: string): boolean {
    return this.keys.has(sig);
  }

  get sigs(): string[] {
    return [...this.keys.keys()];
  }

  /**
   * Add both derivations of a passphrase: the file key (default salt, as mount.ecryptfs and
   * ecryptfs-add-passphrase make it) and the FNEK of `ecryptfs-add-passphrase --fnek` (salt
   * "99887766"). Returns them in that order.
   */
  async addPassphrase(passphrase: string | Uint8Array, salt: Uint8Array = DEFAULT_SALT): Promise<[AuthKey, AuthKey]> {
    const [a, b] = await Promise.all([deriveKeyAsync(passphrase, salt), deriveKeyAsync(passphrase, FNEK_SALT)]);
    return [this.add({ ...a, origin: 'passphrase' }), this.add({ ...b, origin: 'fnek' })];
  }

  addPassphraseSync(passphrase: string | Uint8Array, salt: Uint8Array = DEFAULT_SALT): [AuthKey, AuthKey] {
    const a = deriveKey(passphrase, salt);
    const b = deriveKey(passphrase, FNEK_SALT);
    return [this.add({ ...a, origin: 'passphrase' }), this.add({ ...b, origin: 'fnek' })];
  }

  /** Overwrite every key with zeros and forget them (volume close). */
  destroy(): void {
    for (const k of this.keys.values()) k.key.fill(0);
    this.keys.clear();
    for (const c of this.wrappers.values()) c.destroy?.();
    this.wrappers.clear();
  }
}
