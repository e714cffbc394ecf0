/**
 * Encrypted file names and symlink targets (Tag 70, ECRYPTFS-FORMAT §7, CORPUS-RULES §5): the
 * deterministic MD5-chain prefix, ECB under the FNEK, the eCryptfs base64-like alphabet and the
 * ECRYPTFS_FNEK_ENCRYPTED. prefix. Decryption checks the prefix, so a wrong key or key size is detected.
 */
import { createHash } from 'node:crypto';
import { createBlockCipher, blockSizeOf } from '../crypto/blockcipher.js';
import type { CipherName } from '../crypto/types.js';
import { EcryptfsError } from '../errors.js';
import { cipherCode } from './ciphers.js';
import { decodePacketLength, encodePacketLength } from './packetlen.js';

export const FNEK_PREFIX = 'ECRYPTFS_FNEK_ENCRYPTED.';
const ALPHA = '-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const REV = new Int16Array(256).fill(-1);
for (let i = 0; i < 64; i++) REV[ALPHA.charCodeAt(i)] = i;

export function encode64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 3) {
    const x = (b[i] << 16) | ((b[i + 1] ?? 0) << 8) | (b[i + 2] ?? 0);
    s += ALPHA[(x >> 18) & 63] + ALPHA[(x >> 12) & 63] + ALPHA[(x >> 6) & 63] + ALPHA[x & 63];
  }
  return s;
}
export function decode64(s: string): Buffer {
  const out = Buffer.alloc(Math.floor((s.length * 6) / 8));
  let acc = 0, bits = 0, o = 0;
  for (let i = 0; i < s.length; i++) {
    const v = REV[s.charCodeAt(i) & 255];
    if (v < 0) throw new EcryptfsError('EBADNAME', 'not an encrypted name (bad character)');
    acc = (acc << 6) | v; bits += 6;
    if (bits >= 8) { bits -= 8; out[o++] = (acc >> bits) & 255; }
  }
  return out;
}
function prefix(key: Uint8Array, n: number): Buffer {
  const out = Buffer.alloc(n);
  let h = createHash('md5').update(key).digest();
  for (let j = 0; j < n; j++) {
    out[j] = h[j % 16] === 0 ? 0x42 : h[j % 16];
    if (j % 16 === 15) h = createHash('md5').update(h).digest();
  }
  return out;
}
export function maxClearNameLength(cipher: CipherName, lowerNameMax = 255): number {
  const bs = blockSizeOf(cipher);
  let best = 0;
  for (let n = 1; n < 4096; n++) {
    const L = 17 + n + ((bs - ((17 + n) % bs)) % bs);
    const body = 9 + L;
    const pkt = 1 + (body < 192 ? 1 : 2) + body;
    if (24 + 4 * Math.ceil(pkt / 3) > lowerNameMax) break;
    best = n;
  }
  return best;
}
export function encryptFilename(name: Uint8Array, fnek: { key: Uint8Array; sig: string }, cipher: CipherName, keyBytes: number, lowerNameMax = 255): string {
  const bs = blockSizeOf(cipher);
  const r = 17 + ((bs - ((17 + name.length) % bs)) % bs);
  const buf = Buffer.alloc(r + name.length);
  prefix(fnek.key, r - 1).copy(buf);
  buf.set(name, r);
  const ct = createBlockCipher(cipher, fnek.key.subarray(0, keyBytes)).ecbEncrypt(buf);
  const body = Buffer.concat([Buffer.from(fnek.sig, 'hex'), Buffer.from([cipherCode(cipher, keyBytes)]), ct]);
  const out = FNEK_PREFIX + encode64(Buffer.concat([Buffer.from([0x46]), encodePacketLength(body.length), body]));
  if (out.length > lowerNameMax) throw new EcryptfsError('ENAMETOOLONG', `encrypted name would be ${out.length} bytes`);
  return out;
}
export function parseEncryptedFilename(lower: string): { sig: string; cipherCode: number; ciphertext: Buffer } {
  if (!lower.startsWith(FNEK_PREFIX) || lower.length <= FNEK_PREFIX.length) throw new EcryptfsError('EBADNAME', 'not an encrypted name');
  const b = decode64(lower.slice(FNEK_PREFIX.length));
  if (b[0] !== 0x46) throw new EcryptfsError('EBADNAME', 'not a Tag 70 packet');
  const { length, bytesUsed } = decodePacketLength(b, 1);
  const start = 1 + bytesUsed;
  if (length < 10 || start + length > b.length) throw new EcryptfsError('EBADNAME', 'Tag 70 packet truncated');
  return { sig: b.subarray(start, start + 8).toString('hex'), cipherCode: b[start + 8], ciphertext: Buffer.from(b.subarray(start + 9, start + length)) };
}
export function decryptFilename(p: { ciphertext: Buffer }, fnek: { key: Uint8Array }, cipher: CipherName, keyBytes: number): Buffer {
  const bs = blockSizeOf(cipher);
  if (p.ciphertext.length % bs !== 0) throw new EcryptfsError('EBADNAME', 'ciphertext not a whole number of blocks');
  const pt = createBlockCipher(cipher, fnek.key.subarray(0, keyBytes)).ecbDecrypt(p.ciphertext);
  const z = pt.indexOf(0);
  const want = prefix(fnek.key, 16);
  if (z < 0 || z + 1 >= pt.length || !pt.subarray(0, Math.min(16, z)).equals(want.subarray(0, Math.min(16, z)))) {
    throw new EcryptfsError('EBADNAME', 'encrypted name does not decrypt with this key');
  }
  return Buffer.from(pt.subarray(z + 1));
}
