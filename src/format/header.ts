/**
 * The eCryptfs file header (ECRYPTFS-FORMAT §2-§3): size, marker, flags, extent info and the
 * key packet set (Tag 3 + Tag 11 per passphrase key; Tag 1 public-key packets are recognised and
 * reported but cannot be opened). Pure: buffers in, buffers out.
 */
import { randomBytes } from 'node:crypto';
import { createBlockCipher, ecbEncryptKept } from '../crypto/blockcipher.js';
import type { BlockCipher, CipherName } from '../crypto/types.js';
import { EcryptfsError } from '../errors.js';
import { cipherCode, cipherFromCode } from './ciphers.js';
import { decodePacketLength, encodePacketLength } from './packetlen.js';
import { DEFAULT_METADATA_SIZE, EXTENT_SIZE } from './offsets.js';

export const MARKER = 0x3c81b7f5;
export const FILE_VERSION = 3;
export const FLAG_HMAC = 0x01;
export const FLAG_ENCRYPTED = 0x02;
export const FLAG_METADATA_IN_XATTR = 0x04;
export const FLAG_ENCRYPT_FILENAMES = 0x08;
export const TAG1 = 0x01;
export const TAG3 = 0x8c;
export const TAG11 = 0xed;
/** The S2K salt every ecryptfs-utils tool records in Tag 3 (informational only). */
export const TAG3_DEFAULT_SALT = Buffer.from('0011223344556677', 'hex');
/** Bytes of the header region the kernel parses (one extent). */
export const HEADER_PARSE_BYTES = 4096;
/** Offset of the first key packet in a version >= 1 header. */
const PACKETS_OFFSET = 26;
const MAX_EXTENT_SIZE = 1 << 20;

/** A passphrase-wrapped file key: one Tag 3 packet and the sig from its Tag 11 packet. */
export interface WrappedKey {
  sig: string;
  cipherCode: number;
  salt: Buffer;
  encryptedKey: Buffer;
}

export interface FileHeader {
  /** Clear file size from the size field. */
  size: number;
  version: number;
  flags: number;
  extentSize: number;
  headerExtents: number;
  /** Lower byte offset of extent 0 when the header is in the file. */
  metadataSize: number;
  keys: WrappedKey[];
  /** Sigs (hex key ids) of Tag 1 public-key packets, which this project cannot open. */
  publicKeySigs: string[];
}

export function hasMarker(b: Uint8Array): boolean {
  if (b.length < 16) return false;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return ((v.getUint32(8) ^ MARKER) >>> 0) === v.getUint32(12);
}

function corrupt(what: string): EcryptfsError {
  return new EcryptfsError('ECORRUPT', `damaged eCryptfs header: ${what}`);
}

/**
 * Parse a header from the first bytes of a lower file (`from = 'file'`) or from the
 * user.ecryptfs xattr (`from = 'xattr'`). Throws EBADHEADER when there is no eCryptfs marker,
 * ECORRUPT when the marker is there but the rest does not parse.
 */
export function parseHeader(b: Uint8Array, from: 'file' | 'xattr' = 'file'): FileHeader {
  if (!hasMarker(b)) {
    throw new EcryptfsError('EBADHEADER', 'not an eCryptfs file (no eCryptfs marker in the header)');
  }
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const big = v.getBigUint64(0);
  if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw corrupt(`size field ${big} is impossible`);
  const size = Number(big);
  if (b.length < 20) throw corrupt('header ends before the flags');
  const version = b[16];
  const flags = v.getUint32(16) & 0x00ffffff;
  if (version > FILE_VERSION) {
    throw new EcryptfsError('EUNSUPPORTED', `file format version ${version} is newer than eCryptfs version ${FILE_VERSION}`);
  }
  let extentSize = EXTENT_SIZE;
  let headerExtents = DEFAULT_METADATA_SIZE / EXTENT_SIZE;
  let pos = 20;
  if (version >= 1) {
    if (b.length < PACKETS_OFFSET) throw corrupt('header ends before the extent fields');
    extentSize = v.getUint32(20);
    headerExtents = v.getUint16(24);
    pos = PACKETS_OFFSET;
    if (extentSize < 512 || extentSize > MAX_EXTENT_SIZE || extentSize % 16 !== 0) {
      throw corrupt(`extent size ${extentSize} is not valid`);
    }
  }
  const metadataSize = extentSize * headerExtents;
  if (from === 'file' && metadataSize < DEFAULT_METADATA_SIZE) {
    throw corrupt(`header region of ${metadataSize} bytes is smaller than the minimum 8192`);
  }
  const keys: WrappedKey[] = [];
  const publicKeySigs: string[] = [];
  const end = Math.min(b.length, HEADER_PARSE_BYTES);
  while (pos < end && (b[pos] === TAG3 || b[pos] === TAG1)) {
    if (b[pos] === TAG3) {
      const t3 = parseTag3(b, pos, end);
      pos = t3.next;
      if (pos >= end || b[pos] !== TAG11) throw corrupt('Tag 3 packet not followed by a Tag 11 packet');
      const t11 = parseTag11(b, pos, end);
      pos = t11.next;
      keys.push({ sig: t11.sig, cipherCode: t3.cipherCode, salt: t3.salt, encryptedKey: t3.encryptedKey });
    } else {
      const t1 = parseTag1(b, pos, end);
      pos = t1.next;
      publicKeySigs.push(t1.sig);
    }
  }
  if (keys.length === 0 && publicKeySigs.length === 0) throw corrupt('no key packets');
  return { size, version, flags, extentSize, headerExtents, metadataSize, keys, publicKeySigs };
}

function packetBody(b: Uint8Array, pos: number, end: number, name: string): { body: number; bodyLen: number } {
  let len;
  try {
    len = decodePacketLength(b, pos + 1);
  } catch (e) {
    throw corrupt(`${name} packet length: ${(e as Error).message}`);
  }
  const body = pos + 1 + len.bytesUsed;
  if (body + len.length > end) throw corrupt(`${name} packet runs past the header`);
  return { body, bodyLen: len.length };
}

function parseTag3(b: Uint8Array, pos: number, end: number) {
  const { body, bodyLen } = packetBody(b, pos, end, 'Tag 3');
  if (bodyLen < 14) throw corrupt('Tag 3 packet too short');
  if (b[body] !== 0x04) throw corrupt(`Tag 3 version ${b[body]} (expected 4)`);
  if (b[body + 2] !== 0x03 || b[body + 3] !== 0x01) throw corrupt('Tag 3 S2K specifier not supported');
  const encLen = bodyLen - 13;
  if (encLen > 512) throw corrupt('Tag 3 encrypted key too long');
  return {
    cipherCode: b[body + 1],
    salt: Buffer.from(b.subarray(body + 4, body + 12)),
    encryptedKey: Buffer.from(b.subarray(body + 13, body + bodyLen)),
    next: body + bodyLen,
  };
}

function parseTag11(b: Uint8Array, pos: number, end: number) {
  const { body, bodyLen } = packetBody(b, pos, end, 'Tag 11');
  if (bodyLen < 14 || b[body] !== 0x62) throw corrupt('Tag 11 packet is not binary literal data');
  const nameLen = b[body + 1];
  const dataStart = body + 2 + nameLen + 4;
  if (dataStart + 8 !== body + bodyLen) throw corrupt('Tag 11 packet does not hold an 8-byte key signature');
  return { sig: Buffer.from(b.subarray(dataStart, dataStart + 8)).toString('hex'), next: body + bodyLen };
}

function parseTag1(b: Uint8Array, pos: number, end: number) {
  const { body, bodyLen } = packetBody(b, pos, end, 'Tag 1');
  if (bodyLen < 10 || b[body] !== 0x03) throw corrupt('Tag 1 packet malformed');
  return { sig: Buffer.from(b.subarray(body + 1, body + 9)).toString('hex'), next: body + bodyLen };
}

const CONSOLE = Buffer.from('_CONSOLE', 'latin1');

/**
 * The packets of one wrapped key (Tag 3 with its Tag 11), written at out[p..]; returns the end.
 * Written in place, not concatenated from parts: a header is built on every create.
 */
function writeKeyPackets(k: WrappedKey, sig: Buffer, out: Buffer, p: number): number {
  out[p++] = TAG3;
  p += encodePacketLength(5 + k.salt.length + k.encryptedKey.length).copy(out, p);
  out[p++] = 0x04;
  out[p++] = k.cipherCode;
  out[p++] = 0x03;
  out[p++] = 0x01;
  p += k.salt.copy(out, p);
  out[p++] = 0x60;
  p += k.encryptedKey.copy(out, p);
  out[p++] = TAG11;
  p += encodePacketLength(14 + sig.length).copy(out, p);
  out[p++] = 0x62;
  out[p++] = 0x08;
  p += CONSOLE.copy(out, p);
  out.fill(0, p, p + 4);
  p += 4;
  return p + sig.copy(out, p);
}

function keyPacketsLength(k: WrappedKey, sig: Buffer): number {
  const tag3 = 5 + k.salt.length + k.encryptedKey.length;
  const tag11 = 14 + sig.length;
  return 1 + encodePacketLength(tag3).length + tag3 + 1 + encodePacketLength(tag11).length + tag11;
}

export interface HeaderFields {
  size: number;
  flags: number;
  keys: WrappedKey[];
  extentSize?: number;
  headerExtents?: number;
}

/** The header (fixed part and packets) written at the start of `out` (zeroed, headerLength() bytes or more). */
function writeHeader(h: HeaderFields, marker: Buffer, sigs: Buffer[], out: Buffer): void {
  out.writeBigUInt64BE(BigInt(h.size), 0);
  const m1 = marker.readUInt32BE(0);
  out.writeUInt32BE(m1, 8);
  out.writeUInt32BE((m1 ^ MARKER) >>> 0, 12);
  out.writeUInt32BE(((FILE_VERSION << 24) | (h.flags & 0xffffff)) >>> 0, 16);
  out.writeUInt32BE(h.extentSize ?? EXTENT_SIZE, 20);
  out.writeUInt16BE(h.headerExtents ?? DEFAULT_METADATA_SIZE / EXTENT_SIZE, 24);
  let p = PACKETS_OFFSET;
  h.keys.forEach((k, i) => {
    p = writeKeyPackets(k, sigs[i], out, p);
  });
}

function headerLength(h: HeaderFields, sigs: Buffer[]): number {
  return h.keys.reduce((n, k, i) => n + keyPacketsLength(k, sigs[i]), PACKETS_OFFSET);
}

/** Header bytes up to the end of the packet set (no terminator): the user.ecryptfs xattr value. */
export function buildHeaderBytes(h: HeaderFields, marker: Buffer = randomBytes(4)): Buffer {
  const sigs = h.keys.map((k) => Buffer.from(k.sig, 'hex'));
  const out = Buffer.alloc(headerLength(h, sigs));
  writeHeader(h, marker, sigs, out);
  return out;
}

/** The whole zero-padded header region written at the start of a lower file. */
export function buildHeaderRegion(h: HeaderFields, marker: Buffer = randomBytes(4)): Buffer {
  const metadataSize = (h.extentSize ?? EXTENT_SIZE) * (h.headerExtents ?? DEFAULT_METADATA_SIZE / EXTENT_SIZE);
  const sigs = h.keys.map((k) => Buffer.from(k.sig, 'hex'));
  if (headerLength(h, sigs) + 1 > Math.min(metadataSize, HEADER_PARSE_BYTES)) throw new EcryptfsError('EINVAL', 'too many keys for the header region');
  const out = Buffer.alloc(metadataSize);
  writeHeader(h, marker, sigs, out);
  return out;
}

/** Write a new size into the first 8 bytes of a header (in place). */
export function setHeaderSize(header: Buffer, size: number): void {
  header.writeBigUInt64BE(BigInt(size), 0);
}

/**
 * Wrap a FEK with a passphrase auth-token key (kernel keystore.c write_tag_3_packet). `keyed`:
 * that cipher already keyed with the first fek.length bytes of `kek` (kept by the caller: setting
 * one up per new file cost more than the wrapping).
 */
export function wrapFek(fek: Uint8Array, cipher: CipherName, kek: Uint8Array, sig: string, keyed?: BlockCipher): WrappedKey {
  const keyBytes = fek.length;
  const code = cipherCode(cipher, keyBytes);
  const ecb = keyed ?? createBlockCipher(cipher, kek.subarray(0, keyBytes));
  const bs = ecb.blockSize;
  // AES-192: the kernel encrypts 32 bytes (FEK + 8 zero bytes).
  const plain = Buffer.alloc(Math.ceil(keyBytes / bs) * bs);
  plain.set(fek);
  const encryptedKey = keyed ? ecbEncryptKept(keyed, plain) : ecb.ecbEncrypt(plain);
  plain.fill(0);
  return { sig, cipherCode: code, salt: Buffer.from(TAG3_DEFAULT_SALT), encryptedKey };
}

/** Unwrap the FEK of a Tag 3 packet with the auth-token key its Tag 11 sig names. */
export function unwrapFek(k: WrappedKey, kek: Uint8Array): { cipher: CipherName; fek: Buffer } {
  const info = cipherFromCode(k.cipherCode);
  const keyBytes = info.keyBytes ?? k.encryptedKey.length;
  const ecb = createBlockCipher(info.name, kek.subarray(0, keyBytes));
  if (k.encryptedKey.length % ecb.blockSize !== 0 || k.encryptedKey.length < keyBytes) {
    throw corrupt(`encrypted file key of ${k.encryptedKey.length} bytes does not fit cipher ${info.name}`);
  }
  const fek = ecb.ecbDecrypt(k.encryptedKey).subarray(0, keyBytes);
  return { cipher: info.name, fek: Buffer.from(fek) };
}
