/**
 * Crash-test writer: appends a deterministic pattern to a few files through the mount, fsyncs
 * now and then, and prints "synced NAME SIZE" after each fsync returns (then it is durable).
 */
import { createCipheriv, createHash } from 'node:crypto';
import { openSync, writeSync, fsyncSync, closeSync, fstatSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The bytes file `file` holds at [offset, offset+length): an AES-CTR keystream keyed by the file
 * number, so every byte is random-looking and any misplaced, stale or zeroed extent shows.
 */
export function pattern(file: number, offset: number, length: number): Buffer {
  const key = createHash('sha256').update(`crash-pattern-${file}`).digest().subarray(0, 16);
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(Math.floor(offset / 16)), 8);
  const skip = offset % 16;
  const c = createCipheriv('aes-128-ctr', key, iv);
  return c.update(Buffer.alloc(skip + length)).subarray(skip);
}

if (process.argv[2]) {
  const dir = process.argv[2];
  const files = 3;
  const fds = Array.from({ length: files }, (_, i) => openSync(join(dir, `file${i}`), 'w'));
  // If the mount died before we opened, the files are in the bare mount point: report nothing.
  const dev = Number(process.argv[3]);
  if (dev && fds.some((fd) => fstatSync(fd).dev !== dev)) process.exit(0);
  const sizes = new Array<number>(files).fill(0);
  for (let round = 0; ; round++) {
    const f = round % files;
    const len = 4096 * (1 + (round % 37)) + (round % 5) * 111;
    writeSync(fds[f], pattern(f, sizes[f], len), 0, len, sizes[f]);
    sizes[f] += len;
    if (round % 4 === 3) {
      fsyncSync(fds[f]);
      process.stdout.write(`synced file${f} ${sizes[f]}\n`);
    }
    if (sizes[f] > 64 * 1024 * 1024) break;
  }
  fds.forEach((fd) => closeSync(fd));
}
