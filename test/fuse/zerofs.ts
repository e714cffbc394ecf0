/** A one-file filesystem whose file reads as zeros and swallows writes: measures the FUSE path alone. */
import { FuseErrno } from '../../src/fuse/errno.js';
import type { Attr, DirEntry, Entry, FuseOperations } from '../../src/fuse/operations.js';

const SIZE = 1 << 40;
const zeros = Buffer.alloc(1 << 20);

export class ZeroFs implements FuseOperations {
  private size = SIZE;
  private attr(ino: number): Attr {
    const now = Date.now();
    const dir = ino === 1;
    return { ino, mode: dir ? 0o40755 : 0o100644, nlink: dir ? 2 : 1, uid: 0, gid: 0, size: dir ? 0 : this.size, atimeMs: now, mtimeMs: now, ctimeMs: now };
  }
  lookup(parent: number, name: Buffer): Entry {
    if (parent !== 1 || name.toString() !== 'zero') throw new FuseErrno('ENOENT');
    return { ino: 2, attr: this.attr(2) };
  }
  getattr(ino: number): Attr {
    return this.attr(ino);
  }
  setattr(ino: number, c: { size?: number }): Attr {
    if (c.size !== undefined) this.size = c.size;
    return this.attr(ino);
  }
  read(_ino: number, _fh: number, offset: number, size: number): Buffer {
    return zeros.subarray(0, Math.max(0, Math.min(size, this.size - offset)));
  }
  write(_ino: number, _fh: number, offset: number, data: Buffer): number {
    this.size = Math.max(this.size, offset + data.length);
    return data.length;
  }
  readdir(_ino: number, _fh: number, offset: number): DirEntry[] {
    return [
      { name: '.', ino: 1, mode: 0o40000 },
      { name: '..', ino: 1, mode: 0o40000 },
      { name: 'zero', ino: 2, mode: 0o100000 },
    ].slice(offset);
  }
}
