/**
 * Pure arithmetic between the clear (upper) view of a file and its lower eCryptfs file.
 * Data is stored in extents of EXTENT_SIZE bytes after a header region of metadataSize bytes
 * (0 when the header lives in the user.ecryptfs xattr). The last extent is always stored whole.
 */
export const EXTENT_SIZE = 4096;
/** Header region written by the kernel on 4 KiB-page machines: 2 extents. */
export const DEFAULT_METADATA_SIZE = 8192;

/** Number of extents needed to hold `size` clear bytes. */
export function extentCount(size: number, extentSize = EXTENT_SIZE): number {
  return Math.ceil(size / extentSize);
}

/** Lower file length the kernel produces for a clear size (inode.c upper_size_to_lower_size). */
export function lowerSizeFor(size: number, metadataSize = DEFAULT_METADATA_SIZE, extentSize = EXTENT_SIZE): number {
  return metadataSize + extentCount(size, extentSize) * extentSize;
}

/** Lower byte offset of extent `index`. */
export function extentOffset(index: number, metadataSize = DEFAULT_METADATA_SIZE, extentSize = EXTENT_SIZE): number {
  return metadataSize + index * extentSize;
}

/** The extents [first, first+count) that cover clear bytes [offset, offset+length). */
export function extentsCovering(offset: number, length: number, extentSize = EXTENT_SIZE): { first: number; count: number } {
  if (length <= 0) return { first: Math.floor(offset / extentSize), count: 0 };
  const first = Math.floor(offset / extentSize);
  const last = Math.floor((offset + length - 1) / extentSize);
  return { first, count: last - first + 1 };
}

/**
 * How many whole extents a lower file of `lowerLength` bytes really holds (a truncated or
 * partly written lower file may hold fewer than the size field claims).
 */
export function extentsPresent(lowerLength: number, metadataSize = DEFAULT_METADATA_SIZE, extentSize = EXTENT_SIZE): number {
  return Math.max(0, Math.floor((lowerLength - metadataSize) / extentSize));
}
