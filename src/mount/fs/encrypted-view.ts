/** ecryptfs_encrypted_view: the header the kernel builds from the user.ecryptfs xattr. */
import { buildHeaderRegion, FLAG_METADATA_IN_XATTR, parseHeader } from '../../format/header.js';

/** The in-file header the kernel synthesises from a user.ecryptfs xattr for encrypted view. */
export function headerFromXattr(x: Buffer): Buffer {
  const h = parseHeader(x, 'xattr');
  return buildHeaderRegion({ size: h.size, flags: h.flags & ~FLAG_METADATA_IN_XATTR, keys: h.keys }, x.subarray(8, 12));
}

