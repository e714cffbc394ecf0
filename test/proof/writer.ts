/**
 * Crash-test writer: appends a deterministic pattern to a few files through the mount, fsyncs
 * now and then, and prints "synced NAME SIZE" after each fsync returns (then it is durable).
 */
import { openSync, writeSync, fsyncSync, closeSync, fstatSync } from 'node:fs';
import { join } from 'node:path';

export function patternByte(file: number, offset: number): number {
  return (offset * 31 + file * 7 + (offset >> 12)) & 0xff;
}

export function pattern(file: number, offset: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = patternByte(file, offset + i);
  return b;
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
