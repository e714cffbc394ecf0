/** OpenPGP-style packet lengths as eCryptfs writes and parses them: 1 byte below 192, 2 bytes up to 8383 (§3.1). */
import { EcryptfsError } from '../errors.js';
export function encodePacketLength(n: number): Buffer {
  if (n < 192) return Buffer.from([n]);
  if (n <= 8383) return Buffer.from([((n - 192) >> 8) + 192, (n - 192) & 0xff]);
  throw new EcryptfsError('EINVAL', `packet length ${n} too large`);
}
export function decodePacketLength(b: Uint8Array, off: number): { length: number; bytesUsed: number } {
  if (off >= b.length) throw new EcryptfsError('ECORRUPT', 'packet length missing');
  const b0 = b[off];
  if (b0 < 192) return { length: b0, bytesUsed: 1 };
  if (b0 < 224) {
    if (off + 1 >= b.length) throw new EcryptfsError('ECORRUPT', 'packet length truncated');
    return { length: (b0 - 192) * 256 + b[off + 1] + 192, bytesUsed: 2 };
  }
  throw new EcryptfsError('ECORRUPT', `unsupported packet length byte ${b0}`);
}
