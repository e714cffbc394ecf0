/**
 * OpenPGP-style packet body lengths as the kernel writes and parses them (ECRYPTFS-FORMAT §3.1):
 * one byte below 192, two bytes up to 8383. The kernel writer would emit a first byte >= 224 for
 * larger sizes, which its own parser rejects, so we refuse to write those.
 */
import { EcryptfsError } from '../errors.js';

export const MAX_PACKET_LENGTH = 8383;

/** Bytes the length field of a body of `n` bytes takes (1 or 2). */
export function packetLengthSize(n: number): 1 | 2 {
  return n < 192 ? 1 : 2;
}

export function encodePacketLength(n: number): Buffer {
  if (!Number.isInteger(n) || n < 0) throw new EcryptfsError('EINVAL', `packet length ${n} is not a non-negative integer`);
  if (n < 192) return Buffer.from([n]);
  if (n <= MAX_PACKET_LENGTH) return Buffer.from([((n - 192) >> 8) + 192, (n - 192) & 0xff]);
  throw new EcryptfsError('EINVAL', `packet length ${n} is above ${MAX_PACKET_LENGTH}, the most eCryptfs can parse`);
}

/** Length field at b[off]: the body length and how many bytes the field took. */
export function decodePacketLength(b: Uint8Array, off = 0): { length: number; bytesUsed: number } {
  if (off < 0 || off >= b.length) throw new EcryptfsError('ECORRUPT', 'packet length missing (data ends before it)');
  const b0 = b[off];
  if (b0 < 192) return { length: b0, bytesUsed: 1 };
  if (b0 < 224) {
    if (off + 1 >= b.length) throw new EcryptfsError('ECORRUPT', 'packet length truncated (2-byte form, second byte missing)');
    return { length: (b0 - 192) * 256 + b[off + 1] + 192, bytesUsed: 2 };
  }
  if (b0 === 255) throw new EcryptfsError('EUNSUPPORTED', 'five-byte packet length (first byte 0xff) is not supported by eCryptfs');
  throw new EcryptfsError('ECORRUPT', `invalid packet length byte 0x${b0.toString(16)} (224..254 are partial lengths, never valid in eCryptfs)`);
}
