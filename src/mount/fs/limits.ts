/** Limits from the lower filesystem and the process: the largest file, the descriptor limit. */
import * as nodefs from 'node:fs';

/**
 * The largest file the lower filesystem holds (the kernel's s_maxbytes), from statfs' f_type:
 * ext2/3/4 address 2^32 blocks per file; other Linux filesystems use MAX_LFS_FILESIZE (2^63-1),
 * which is past what a JS number holds exactly, so 2^53-1 bounds those.
 */
export function lowerMaxBytes(s: { type: number; bsize: number }): number {
  switch (s.type) {
    case 0xef53: return Math.min(Number.MAX_SAFE_INTEGER, (2 ** 32 - 1) * s.bsize);
    case 0x4d44: return 0xffffffff; // vfat
    default: return Number.MAX_SAFE_INTEGER;
  }
}

export function fdLimit(): number {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(nodefs.readFileSync('/proc/self/limits', 'latin1'));
    if (m) return Number(m[1]);
  } catch {
    // not Linux
  }
  return 1024;
}
