/**
 * mount.ecryptfs option strings (ECRYPTFS-TOOLS §3): the kernel's ecryptfs_* options plus the
 * helper's own (key=passphrase:passphrase_passwd=..., no_sig_cache, verbosity, ...).
 * Options are split on ',' and newlines; a key= value is split further on ':'.
 * Pure: no I/O. Secrets parsed here are returned as Buffers for the caller to wipe.
 */
import { CIPHER_NAMES, type CipherName } from '../crypto/types.js';
import { EcryptfsError } from '../errors.js';
import { checkKeyBytes as checkCipherKeyBytes } from '../format/ciphers.js';

export interface MountOptions {
  keyModule?: string;
  passphrase?: Buffer;
  passphraseFile?: string;
  passphraseFd?: number;
  salt?: Buffer;
  sigs: string[];
  fnekSig?: string;
  cipher?: CipherName;
  keyBytes?: number;
  fnCipher?: CipherName;
  fnKeyBytes?: number;
  passthrough?: boolean;
  enableFilenameCrypto?: boolean;
  xattrMetadata: boolean;
  encryptedView: boolean;
  unlinkSigs: boolean;
  mountAuthTokOnly: boolean;
  checkDevRuid: boolean;
  noSigCache: boolean;
  verbosity?: number;
  readOnly: boolean;
  /** Generic mount options passed on (rw, nosuid, nodev, noexec, allow_other, ...). */
  generic: string[];
}

const SIG = /^[0-9a-f]{16}$/;

/**
 * ecryptfs_check_dev_ruid: the kernel mounts only a lower directory the real uid owns
 * (fs/ecryptfs/main.c, EPERM "Mount of device ... not owned by requested user"). `owner` is the
 * lower root's owner as the caller found it (the daemon: fstat of the descriptor it serves).
 */
export function checkDevRuid(owner: number, ruid: number, lower: string): void {
  if (owner !== ruid) {
    throw new EcryptfsError('EINVAL', `Mount of device (uid: ${owner}) not owned by requested user (uid: ${ruid}): ecryptfs_check_dev_ruid mounts only a lower directory owned by the user who mounts`, lower);
  }
}

/** Options mount(8) and fstab use that never reach the filesystem. */
const USERSPACE_ONLY = new Set(['defaults', 'auto', 'noauto', 'nofail', '_netdev', 'users', 'nouser', 'owner', 'group', 'loud', 'silent']);

/** Generic mount options the FUSE mount takes (VFS flags and fuse's own); anything else is refused up front. */
const VFS_OPTIONS = new Set([
  'suid', 'nosuid', 'dev', 'nodev', 'exec', 'noexec', 'sync', 'async', 'dirsync', 'atime', 'noatime',
  'diratime', 'nodiratime', 'relatime', 'norelatime', 'strictatime', 'nostrictatime', 'lazytime', 'nolazytime',
  'nosymfollow', 'allow_other', 'allow_root', 'default_permissions', 'context', 'fscontext', 'defcontext', 'rootcontext',
]);

function yesNo(name: string, v: string | undefined): boolean {
  if (v === undefined || v === '' || v === 'y' || v === 'yes') return true;
  if (v === 'n' || v === 'no') return false;
  throw new EcryptfsError('EINVAL', `option ${name} takes y or n, not "${v}"`);
}

function cipherName(name: string, v: string): CipherName {
  if (!(CIPHER_NAMES as readonly string[]).includes(v)) {
    throw new EcryptfsError('EINVAL', `${name}: unknown cipher "${v}" (one of ${CIPHER_NAMES.join(', ')})`);
  }
  return v as CipherName;
}

function uint(name: string, v: string | undefined): number {
  if (v === undefined || !/^\d+$/.test(v)) throw new EcryptfsError('EINVAL', `option ${name} needs a number`);
  return Number(v);
}

function sig(name: string, v: string | undefined): string {
  if (v === undefined || !SIG.test(v)) throw new EcryptfsError('EINVAL', `option ${name} needs a 16-hex-digit key signature`);
  return v;
}

/** Split "a=b,c,key=passphrase:passphrase_passwd=x" into [name, value] pairs. */
export function tokenize(s: string): Array<[string, string | undefined]> {
  const out: Array<[string, string | undefined]> = [];
  for (const tok of s.split(/[,\n]/)) {
    if (tok === '') continue;
    if (tok.startsWith('key=')) {
      const parts = tok.slice(4).split(':');
      out.push(['key', parts[0]]);
      for (const p of parts.slice(1)) {
        const i = p.indexOf('=');
        out.push(i < 0 ? [p, undefined] : [p.slice(0, i), p.slice(i + 1)]);
      }
      continue;
    }
    const i = tok.indexOf('=');
    out.push(i < 0 ? [tok, undefined] : [tok.slice(0, i), tok.slice(i + 1)]);
  }
  return out;
}

export function parseMountOptions(s: string): MountOptions {
  const o: MountOptions = {
    sigs: [], xattrMetadata: false, encryptedView: false, unlinkSigs: false, mountAuthTokOnly: false,
    checkDevRuid: false, noSigCache: false, readOnly: false, generic: [],
  };
  for (const [name, v] of tokenize(s)) {
    switch (name) {
      case 'key':
        if (v !== 'passphrase') throw new EcryptfsError('EINVAL', `key module "${v}" is not supported (only key=passphrase)`);
        o.keyModule = v;
        break;
      case 'passphrase_passwd':
      case 'passwd':
        o.passphrase = Buffer.from(v ?? '', 'utf8');
        break;
      case 'passphrase_passwd_file':
      case 'passfile':
        if (!v) throw new EcryptfsError('EINVAL', `${name} needs a file name`);
        o.passphraseFile = v;
        break;
      case 'passphrase_passwd_fd':
      case 'passfd':
        o.passphraseFd = uint(name, v);
        break;
      case 'passphrase_salt':
      case 'salt':
        if (!v || !/^[0-9a-fA-F]{16}$/.test(v)) throw new EcryptfsError('EINVAL', `${name} needs 16 hex digits`);
        o.salt = Buffer.from(v, 'hex');
        break;
      case 'passphrase_type':
        break;
      case 'ecryptfs_sig':
      case 'sig':
        o.sigs.push(sig(name, v));
        break;
      case 'ecryptfs_fnek_sig':
        o.fnekSig = sig(name, v);
        break;
      case 'ecryptfs_cipher':
      case 'cipher':
        o.cipher = cipherName(name, v ?? '');
        break;
      case 'ecryptfs_key_bytes':
        o.keyBytes = uint(name, v);
        break;
      case 'ecryptfs_fn_cipher':
        o.fnCipher = cipherName(name, v ?? '');
        break;
      case 'ecryptfs_fn_key_bytes':
        o.fnKeyBytes = uint(name, v);
        break;
      case 'ecryptfs_passthrough':
      case 'passthrough':
        o.passthrough = yesNo(name, v);
        break;
      case 'ecryptfs_enable_filename_crypto':
        o.enableFilenameCrypto = yesNo(name, v);
        break;
      case 'ecryptfs_xattr_metadata':
      case 'ecryptfs_xattr':
      case 'xattr':
        o.xattrMetadata = yesNo(name, v);
        break;
      case 'ecryptfs_encrypted_view':
      case 'encrypted_view':
        o.encryptedView = yesNo(name, v);
        break;
      case 'ecryptfs_unlink_sigs':
        o.unlinkSigs = true;
        break;
      case 'ecryptfs_mount_auth_tok_only':
        o.mountAuthTokOnly = true;
        break;
      case 'ecryptfs_check_dev_ruid':
        o.checkDevRuid = true;
        break;
      case 'ecryptfs_hmac':
      case 'hmac':
        if (yesNo(name, v)) throw new EcryptfsError('EINVAL', 'HMAC is not supported by eCryptfs');
        break;
      case 'no_sig_cache':
        o.noSigCache = true;
        break;
      case 'verbose':
        o.verbosity = 1;
        break;
      case 'verbosity':
        o.verbosity = uint(name, v);
        break;
      case 'no_prompt':
      case 'wild_ass_guess':
        o.verbosity = 0;
        break;
      case 'ro':
        o.readOnly = true;
        break;
      case 'rw':
        o.readOnly = false;
        break;
      case 'user':
      case 'min_key_bytes':
      case 'max_key_bytes':
        break;
      default:
        if (name.startsWith('ecryptfs_')) throw new EcryptfsError('EINVAL', `unknown eCryptfs mount option "${name}"`);
        // fstab's own options (noauto, nofail, x-...) are for mount(8), never for the filesystem.
        if (USERSPACE_ONLY.has(name) || /^[xX]-/.test(name) || name === 'comment') break;
        if (!VFS_OPTIONS.has(name)) throw new EcryptfsError('EINVAL', `unknown mount option "${name}"`);
        o.generic.push(v === undefined ? name : `${name}=${v}`);
    }
  }
  if (o.encryptedView) {
    o.xattrMetadata = true;
    o.readOnly = true;
  }
  return o;
}

/** The options as the helper lists them after "Attempting to mount with the following options:". */
export function helperOptionList(o: MountOptions): string[] {
  const out = ['ecryptfs_unlink_sigs'];
  if (o.passthrough) out.push('ecryptfs_passthrough');
  if (o.xattrMetadata && !o.encryptedView) out.push('ecryptfs_xattr_metadata');
  if (o.encryptedView) out.push('ecryptfs_encrypted_view');
  if (o.fnekSig) out.push(`ecryptfs_fnek_sig=${o.fnekSig}`);
  if (o.fnCipher) out.push(`ecryptfs_fn_cipher=${o.fnCipher}`);
  if (o.fnKeyBytes) out.push(`ecryptfs_fn_key_bytes=${o.fnKeyBytes}`);
  if (o.keyBytes !== undefined) out.push(`ecryptfs_key_bytes=${o.keyBytes}`);
  if (o.cipher) out.push(`ecryptfs_cipher=${o.cipher}`);
  for (const s of o.sigs) out.push(`ecryptfs_sig=${s}`);
  return out;
}

/** The options as the kernel shows them in /proc/mounts (super.c ecryptfs_show_options order). */
export function kernelOptionString(o: MountOptions): string {
  const out = [o.readOnly ? 'ro' : 'rw'];
  if (o.fnekSig) out.push(`ecryptfs_fnek_sig=${o.fnekSig}`);
  for (const s of o.sigs) out.push(`ecryptfs_sig=${s}`);
  out.push(`ecryptfs_cipher=${o.cipher ?? 'aes'}`);
  out.push(`ecryptfs_key_bytes=${o.keyBytes ?? 16}`);
  if (o.fnekSig) {
    out.push(`ecryptfs_fn_cipher=${o.fnCipher ?? o.cipher ?? 'aes'}`);
    out.push(`ecryptfs_fn_key_bytes=${o.fnKeyBytes ?? o.keyBytes ?? 16}`);
  }
  if (o.passthrough) out.push('ecryptfs_passthrough');
  if (o.xattrMetadata) out.push('ecryptfs_xattr_metadata');
  if (o.encryptedView) out.push('ecryptfs_encrypted_view');
  if (o.mountAuthTokOnly) out.push('ecryptfs_mount_auth_tok_only');
  if (o.unlinkSigs) out.push('ecryptfs_unlink_sigs');
  return out.join(',');
}

/**
 * Command-line options over ~/.ecryptfsrc defaults: what the command line gives wins, the rc
 * file fills the rest (libecryptfs unions the rc file's options under the command line's).
 */
export function withDefaults(cmd: MountOptions, rc: MountOptions): MountOptions {
  const o: MountOptions = { ...cmd };
  for (const k of Object.keys(rc) as Array<keyof MountOptions>) {
    if (o[k] === undefined) (o as unknown as Record<string, unknown>)[k] = rc[k];
  }
  if (o.sigs.length === 0) o.sigs = [...rc.sigs];
  for (const flag of ['xattrMetadata', 'encryptedView', 'unlinkSigs', 'mountAuthTokOnly', 'checkDevRuid', 'noSigCache', 'readOnly'] as const) o[flag] = cmd[flag] || rc[flag];
  o.generic = [...rc.generic.filter((g) => !cmd.generic.includes(g)), ...cmd.generic];
  // A passphrase source on the command line replaces the rc file's.
  if (cmd.passphrase || cmd.passphraseFile || cmd.passphraseFd !== undefined) {
    o.passphrase = cmd.passphrase;
    o.passphraseFile = cmd.passphraseFile;
    o.passphraseFd = cmd.passphraseFd;
  }
  return o;
}

/** ~/.ecryptfsrc: the mount options of -o, one or more a line; '#' starts a comment line. */
export function parseRcFile(text: string): MountOptions {
  return parseMountOptions(text.split('\n').filter((l) => !/^\s*#/.test(l)).map((l) => l.trim()).join('\n'));
}

/** Refuse a cipher/key size pair the cipher cannot take (as soon as both are known). */
export function checkKeyBytes(o: MountOptions): void {
  if (o.cipher && o.keyBytes !== undefined) checkCipherKeyBytes(o.cipher, o.keyBytes);
  if (o.fnCipher && o.fnKeyBytes !== undefined) checkCipherKeyBytes(o.fnCipher, o.fnKeyBytes, 'filename cipher');
}
