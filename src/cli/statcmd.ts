/** What ecryptfs-stat prints for a lower file (ecryptfs-utils src/utils/ecryptfs-stat.c format). */
import { promises as fsp } from 'node:fs';
import { EcryptfsError } from '../errors.js';
import { FLAG_ENCRYPTED, FLAG_HMAC, hasMarker, HEADER_PARSE_BYTES, parseHeader } from '../format/header.js';
import { getXattrIfAny } from '../lower/xattr.js';
import { XATTR_NAME } from '../volume/file.js';

/** `path` may be the raw bytes of an argument (a name that is not UTF-8). */
export async function statText(path: string | Buffer): Promise<string> {
  const fh = await fsp.open(path, 'r');
  const head = Buffer.alloc(HEADER_PARSE_BYTES);
  let n: number;
  try {
    n = (await fh.read(head, 0, head.length, 0)).bytesRead;
  } finally {
    await fh.close();
  }
  let inXattr = false;
  let bytes: Buffer = head.subarray(0, n);
  if (!hasMarker(bytes)) {
    const x = await getXattrIfAny(path, XATTR_NAME).catch(() => undefined);
    if (!x || !hasMarker(x)) throw new EcryptfsError('EBADHEADER', 'Magic eCryptfs marker not found in header or user.ecryptfs xattr: not an eCryptfs file', path.toString());
    bytes = x;
    inXattr = true;
  }
  const h = parseHeader(bytes, inXattr ? 'xattr' : 'file');
  const lines = [
    `File version: [${h.version}]`,
    `Decrypted file size: [${h.size}]`,
    `Number of header bytes at front of file: [${inXattr ? 0 : h.metadataSize}]`,
    inXattr ? 'Metadata in the extended attribute region' : 'Metadata in the header region',
    h.flags & FLAG_ENCRYPTED ? 'Encrypted' : 'Plaintext',
    h.flags & FLAG_HMAC ? 'HMAC enabled' : 'HMAC disabled',
  ];
  return lines.join('\n') + '\n';
}
