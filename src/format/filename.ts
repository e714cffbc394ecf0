/**
 * Encrypted file names and symlink targets (Tag 70; ECRYPTFS-FORMAT §7, CORPUS-RULES §5).
 *
 * lower = "ECRYPTFS_FNEK_ENCRYPTED." + enc64(0x46 <len> <sig 8> <cipher code> ECB(fnek[0:kb], block))
 * block = prefix || 0x00 || name, block-aligned by growing the prefix (16..16+bs-1 bytes). The
 * prefix is an MD5 chain of the whole 64-byte FNEK (not random), so a name always encrypts to the
 * same lower name: lookups re-encrypt, and we can check a decryption by its prefix.
 *
 * Names are raw bytes (UTF-8 is not normalised). Callers must pass "." and ".." through
 * unencrypted, as the kernel does; nothing here special-cases them.
 */
import { createHash } from 'node:crypto';
import { blockSizeOf, createBlockCipher, ecbEncryptKept } from '../crypto/blockcipher.js';
import type { BlockCipher, CipherName } from '../crypto/types.js';
import { EcryptfsError, isEcryptfsError } from '../errors.js';
import { checkKeyBytes, cipherCode } from './ciphers.js';
import { decodePacketLength, encodePacketLength, MAX_PACKET_LENGTH, packetLengthSize } from './packetlen.js';

export const FNEK_PREFIX = 'ECRYPTFS_FNEK_ENCRYPTED.';
export const TAG70 = 0x46;
/** 16 prefix bytes + the 0x00 separator: the least the kernel puts before a name. */
const MIN_PREFIX = 17;
/** Longest name a 255-byte lower NAME_MAX allows, for every eCryptfs cipher (statfs f_namelen). */
export const MAX_NAME_BYTES = 143;

const ALPHABET = '-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
// char code -> 6-bit value, -1 for characters outside the alphabet.
const REVERSE = new Int8Array(256).fill(-1);
for (let i = 0; i < 64; i++) REVERSE[ALPHABET.charCodeAt(i)] = i;

const ALPHABET_BYTES = Buffer.from(ALPHABET, 'latin1');

/**
 * enc64: 3 bytes -> 4 chars; a final 1- or 2-byte group is zero-padded and still gives 4 chars.
 * Into bytes, then one string (every new name is encoded, every listed one re-encoded to check it
 * is canonical: an array of one-character strings joined cost several times more).
 */
export function encode64(b: Uint8Array): string {
  const out = Buffer.allocUnsafe(4 * Math.ceil(b.length / 3));
  let o = 0;
  for (let i = 0; i < b.length; i += 3) {
    const x = (b[i] << 16) | ((i + 1 < b.length ? b[i + 1] : 0) << 8) | (i + 2 < b.length ? b[i + 2] : 0);
    out[o++] = ALPHABET_BYTES[x >> 18];
    out[o++] = ALPHABET_BYTES[(x >> 12) & 63];
    out[o++] = ALPHABET_BYTES[(x >> 6) & 63];
    out[o++] = ALPHABET_BYTES[x & 63];
  }
  return out.toString('latin1', 0, o);
}

/** True when every character of s is in the eCryptfs alphabet. */
export function isEncoded64(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 255 || REVERSE[c] < 0) return false;
  }
  return true;
}

/**
 * Decode as the kernel does: 6 bits per char, floor(6n/8) bytes, characters outside the alphabet
 * count as 0. With `strict`, such characters are an EBADNAME error instead.
 */
export function decode64(s: string, strict = false): Buffer {
  const out = Buffer.alloc(Math.floor((s.length * 6) / 8));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    let v = c > 255 ? -1 : REVERSE[c];
    if (v < 0) {
      if (strict) throw new EcryptfsError('EBADNAME', `not an encrypted name: character ${JSON.stringify(s[i])} is outside the eCryptfs alphabet`);
      v = 0;
    }
    acc = ((acc << 6) | v) & 0xfff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out;
}

/** The deterministic "random" prefix: MD5 chain of the FNEK, 0x00 replaced by 0x42. */
export function namePrefix(fnek: Uint8Array, n: number): Buffer {
  const out = Buffer.alloc(n);
  let h = createHash('md5').update(fnek).digest();
  for (let j = 0; j < n; j++) {
    const v = h[j % 16];
    out[j] = v === 0 ? 0x42 : v;
    if (j % 16 === 15) h = createHash('md5').update(h).digest();
  }
  return out;
}

/** Bytes before the name (prefix + separator): grows so the block is a whole number of blocks. */
function prefixLength(nameBytes: number, bs: number): number {
  return MIN_PREFIX + ((bs - ((MIN_PREFIX + nameBytes) % bs)) % bs);
}

/** Tag 70 body length (sig + code + ciphertext) for a clear name of n bytes. */
function tag70BodyLength(n: number, bs: number): number {
  return 8 + 1 + prefixLength(n, bs) + n;
}

/**
 * Length of the lower name (or lower symlink target) for a clear name of `nameBytes` bytes, prefix
 * included. Infinity if the Tag 70 packet would exceed the 8383-byte packet length limit.
 */
export function encryptedNameLength(nameBytes: number, cipher: CipherName): number {
  const body = tag70BodyLength(nameBytes, blockSizeOf(cipher));
  if (body > MAX_PACKET_LENGTH) return Infinity;
  const packet = 1 + packetLengthSize(body) + body;
  return FNEK_PREFIX.length + 4 * Math.ceil(packet / 3);
}

/**
 * Longest clear name (bytes) whose lower name fits in lowerNameMax: 143 for every cipher at 255
 * (what statfs reports as f_namelen under FNEK); pass e.g. 4095 for symlink targets.
 */
export function maxClearNameLength(cipher: CipherName, lowerNameMax = 255): number {
  // The length grows monotonically with n, so a binary search is exact.
  let lo = 0;
  let hi = MAX_PACKET_LENGTH;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (encryptedNameLength(mid, cipher) <= lowerNameMax) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

export interface Fnek {
  /** The 64-byte FNEK (auth token session_key_encryption_key); all 64 bytes feed the prefix. */
  key: Uint8Array;
  /** Its 16-hex-digit sig, stored in every Tag 70 packet. */
  sig: string;
}

function checkFnekKey(key: Uint8Array, keyBytes: number): void {
  if (key.length !== 64) throw new EcryptfsError('EINVAL', `the FNEK must be the 64-byte auth-token key, not ${key.length} bytes`);
  if (keyBytes > key.length) throw new EcryptfsError('EINVAL', `key size ${keyBytes} is larger than the FNEK`);
}

/**
 * Clear name (or symlink target) bytes -> lower name. ENAMETOOLONG if the result would be longer
 * than lowerNameMax (255 for names: 143 bytes is the longest name; the lower fs's symlink limit,
 * e.g. 4095, for targets).
 */
export function encryptFilename(name: Uint8Array, fnek: Fnek, cipher: CipherName, keyBytes: number, lowerNameMax = 255): string {
  // Used once: freed now, not left for a finalizer (its cipher context is native memory).
  const e = new FilenameEncryptor(fnek, cipher, keyBytes);
  try {
    return e.encrypt(name, lowerNameMax);
  } finally {
    e.destroy();
  }
}

/**
 * encryptFilename for one FNEK, with its cipher and name prefixes set up once: a key set-up and
 * an MD5 chain per name cost more than encrypting the name (measured: ~40 us of ~50 per name).
 */
export class FilenameEncryptor {
  private readonly ecb: BlockCipher;
  private readonly prefixes = new Map<number, Buffer>();

  constructor(private readonly fnek: Fnek, private readonly cipher: CipherName, keyBytes: number) {
    checkKeyBytes(cipher, keyBytes);
    checkFnekKey(fnek.key, keyBytes);
    if (!/^[0-9a-f]{16}$/.test(fnek.sig)) throw new EcryptfsError('EINVAL', `FNEK sig must be 16 lowercase hex digits, not ${JSON.stringify(fnek.sig)}`);
    this.ecb = createBlockCipher(cipher, fnek.key.subarray(0, keyBytes));
  }

  encrypt(name: Uint8Array, lowerNameMax = 255): string {
    const cipher = this.cipher;
    if (name.length === 0) throw new EcryptfsError('EINVAL', 'cannot encrypt an empty name');
    const lowerLen = encryptedNameLength(name.length, cipher);
    if (lowerLen > lowerNameMax) {
      throw new EcryptfsError(
        'ENAMETOOLONG',
        `a ${name.length}-byte name would need a ${lowerLen}-byte encrypted lower name, above the limit of ${lowerNameMax} ` +
          `(at most ${maxClearNameLength(cipher, lowerNameMax)} bytes fit); use a shorter name`,
      );
    }
    const r = prefixLength(name.length, this.ecb.blockSize);
    const prefix = this.prefix(r - 1);
    const block = Buffer.alloc(r + name.length);
    prefix.copy(block); // block[r-1] stays 0x00: the separator
    block.set(name, r);
    const ct = ecbEncryptKept(this.ecb, block);
    block.fill(0);
    const body = 8 + 1 + ct.length;
    const lenField = encodePacketLength(body);
    const packet = Buffer.alloc(1 + lenField.length + body);
    packet[0] = TAG70;
    lenField.copy(packet, 1);
    let p = 1 + lenField.length;
    p += packet.write(this.fnek.sig, p, 'hex');
    packet[p++] = cipherCode(cipher, this.ecb.keyBytes);
    ct.copy(packet, p);
    return FNEK_PREFIX + encode64(packet);
  }

  /** namePrefix of n bytes, derived once per length. */
  private prefix(n: number): Buffer {
    let p = this.prefixes.get(n);
    if (!p) this.prefixes.set(n, (p = namePrefix(this.fnek.key, n)));
    return p;
  }

  /**
   * decryptFilename of a Tag 70 ciphertext with this FNEK, cipher and key size, the prefix
   * verified: the cipher and prefixes set up once (per name they cost more than the decryption,
   * and a listing decrypts every name).
   */
  decrypt(ct: Uint8Array): Buffer {
    const bs = this.ecb.blockSize;
    checkNameCiphertext(ct, bs, this.cipher);
    return nameOfBlock(this.ecb.ecbDecrypt(ct), bs, (z) => this.prefix(z));
  }

  /** Forget the key (the prefixes are derived from it too). */
  destroy(): void {
    for (const p of this.prefixes.values()) p.fill(0);
    this.prefixes.clear();
    this.ecb.destroy?.();
  }
}

export interface ParsedFilename {
  /** Sig of the FNEK that encrypted the name: pick the key by it. */
  sig: string;
  /** RFC 2440 cipher code (cipherFromCode); the key size comes from the mount, except AES. */
  cipherCode: number;
  ciphertext: Buffer;
}

/** True if the name has the FNEK prefix (the kernel would try to decrypt it). */
export function isEncryptedFilename(lowerName: string): boolean {
  return lowerName.length > FNEK_PREFIX.length && lowerName.startsWith(FNEK_PREFIX);
}

/**
 * Lower name -> the Tag 70 fields, without a key. By default strict: the text must be exactly
 * what the kernel's encoder makes of the packet (alphabet only, no extra characters, zero
 * padding), so arbitrary names that merely start with the prefix are EBADNAME. `lenient` decodes
 * like the kernel (unknown characters = 0, trailing text ignored).
 */
export function parseEncryptedFilename(lowerName: string, options: { lenient?: boolean } = {}): ParsedFilename {
  if (!isEncryptedFilename(lowerName)) throw new EcryptfsError('EBADNAME', `not an encrypted name (no ${FNEK_PREFIX} prefix)`);
  const text = lowerName.slice(FNEK_PREFIX.length);
  const strict = !options.lenient;
  const b = decode64(text, strict);
  if (b.length < 2 || b[0] !== TAG70) throw new EcryptfsError('EBADNAME', 'not an encrypted name (no Tag 70 packet)');
  let len: { length: number; bytesUsed: number };
  try {
    len = decodePacketLength(b, 1);
  } catch (e) {
    throw new EcryptfsError('EBADNAME', `bad Tag 70 packet length: ${isEcryptfsError(e) ? e.message : String(e)}`);
  }
  const start = 1 + len.bytesUsed;
  const end = start + len.length;
  if (len.length < 8 + 1 + 8) throw new EcryptfsError('EBADNAME', `Tag 70 packet too short (${len.length}-byte body)`);
  if (end > b.length) throw new EcryptfsError('EBADNAME', 'Tag 70 packet truncated (name shorter than its length field says)');
  if (strict && encode64(b.subarray(0, end)) !== text) {
    throw new EcryptfsError('EBADNAME', 'not an encrypted name (text after the Tag 70 packet, or not in canonical form)');
  }
  return {
    sig: b.subarray(start, start + 8).toString('hex'),
    cipherCode: b[start + 8],
    ciphertext: Buffer.from(b.subarray(start + 9, end)),
  };
}

/**
 * Tag 70 ciphertext -> clear name bytes. `key` is the 64-byte FNEK (or an object holding it).
 * By default the decrypted prefix is checked against the FNEK's MD5 chain, which tells a wrong key
 * or key size (EBADNAME) from a right one; `verifyPrefix: false` accepts any prefix like the kernel.
 */
export function decryptFilename(
  parsed: Pick<ParsedFilename, 'ciphertext'>,
  key: Uint8Array | { key: Uint8Array },
  cipher: CipherName,
  keyBytes: number,
  options: { verifyPrefix?: boolean } = {},
): Buffer {
  const fnek = key instanceof Uint8Array ? key : key.key;
  checkKeyBytes(cipher, keyBytes);
  checkFnekKey(fnek, keyBytes);
  const bs = blockSizeOf(cipher);
  const ct = parsed.ciphertext;
  checkNameCiphertext(ct, bs, cipher);
  const pt = createBlockCipher(cipher, fnek.subarray(0, keyBytes)).ecbDecrypt(ct);
  return nameOfBlock(pt, bs, options.verifyPrefix === false ? undefined : (z) => namePrefix(fnek, z));
}

/** A Tag 70 ciphertext must be whole cipher blocks, at least one. */
function checkNameCiphertext(ct: Uint8Array, bs: number, cipher: CipherName): void {
  if (ct.length === 0 || ct.length % bs !== 0) {
    throw new EcryptfsError('EBADNAME', `encrypted name is ${ct.length} bytes, not a whole number of ${bs}-byte ${cipher} blocks`);
  }
}

/** The clear name in a decrypted Tag 70 block (wiped), its prefix checked against `prefix(z)` unless undefined. */
function nameOfBlock(pt: Buffer, bs: number, prefix: ((z: number) => Buffer) | undefined): Buffer {
  const z = pt.indexOf(0);
  if (z < 0 || z + 1 >= pt.length) {
    pt.fill(0);
    throw new EcryptfsError('EBADNAME', 'encrypted name does not decrypt with this key (no separator / empty name): wrong FNEK or cipher key size?');
  }
  if (prefix) {
    if (z < MIN_PREFIX - 1 || z >= MIN_PREFIX - 1 + bs || !prefix(z).equals(pt.subarray(0, z))) {
      pt.fill(0);
      throw new EcryptfsError('EBADNAME', 'encrypted name does not decrypt with this key (prefix mismatch): wrong FNEK or cipher key size?');
    }
  }
  const name = Buffer.from(pt.subarray(z + 1));
  pt.fill(0);
  return name;
}
