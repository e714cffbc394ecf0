/**
 * The small lower-directory interface the volume layer works on, and its node:fs implementation.
 * Paths are relative to the lower root ('' is the root itself) and use '/' separators.
 * Errors are Node's own (with .code such as ENOENT), so adapters can map them to errno values.
 */
import { promises as fsp, constants as fsc, type Stats, type StatsFs } from 'node:fs';
import { join } from 'node:path';
import { getXattrIfAny, listXattr, removeXattr, setXattr } from './xattr.js';

export interface LowerFile {
  read(buf: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  write(buf: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  truncate(length: number): Promise<void>;
  stat(): Promise<Stats>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

export type OpenMode = 'r' | 'rw' | 'create-exclusive';

export interface LowerFs {
  /** Absolute path of the lower root (for messages and for helpers that need a real path). */
  readonly root: string;
  abs(path: string): string;
  open(path: string, mode: OpenMode, createMode?: number): Promise<LowerFile>;
  lstat(path: string): Promise<Stats>;
  stat(path: string): Promise<Stats>;
  readdir(path: string): Promise<string[]>;
  mkdir(path: string, mode: number): Promise<void>;
  rmdir(path: string): Promise<void>;
  unlink(path: string): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  symlink(target: string, path: string): Promise<void>;
  readlink(path: string): Promise<string>;
  link(existing: string, path: string): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  lchown(path: string, uid: number, gid: number): Promise<void>;
  lutimes(path: string, atime: Date | number, mtime: Date | number): Promise<void>;
  statfs(path: string): Promise<StatsFs>;
  getxattr(path: string, name: string): Promise<Buffer | undefined>;
  setxattr(path: string, name: string, value: Uint8Array, flags?: number): Promise<void>;
  listxattr(path: string): Promise<string[]>;
  removexattr(path: string, name: string): Promise<void>;
}

class NodeLowerFile implements LowerFile {
  constructor(private readonly fh: fsp.FileHandle) {}
  async read(buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return (await this.fh.read(buf, offset, length, position)).bytesRead;
  }
  async write(buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    let done = 0;
    while (done < length) {
      const { bytesWritten } = await this.fh.write(buf, offset + done, length - done, position + done);
      done += bytesWritten;
    }
    return done;
  }
  truncate(length: number): Promise<void> {
    return this.fh.truncate(length);
  }
  stat(): Promise<Stats> {
    return this.fh.stat();
  }
  sync(): Promise<void> {
    return this.fh.sync();
  }
  close(): Promise<void> {
    return this.fh.close();
  }
}

export class NodeLowerFs implements LowerFs {
  constructor(readonly root: string) {}
  abs(path: string): string {
    return path === '' ? this.root : join(this.root, path);
  }
  async open(path: string, mode: OpenMode, createMode = 0o600): Promise<LowerFile> {
    const flags = mode === 'r' ? fsc.O_RDONLY : mode === 'rw' ? fsc.O_RDWR : fsc.O_RDWR | fsc.O_CREAT | fsc.O_EXCL;
    return new NodeLowerFile(await fsp.open(this.abs(path), flags | fsc.O_NOFOLLOW, createMode));
  }
  lstat(path: string) { return fsp.lstat(this.abs(path)); }
  stat(path: string) { return fsp.stat(this.abs(path)); }
  readdir(path: string) { return fsp.readdir(this.abs(path)); }
  async mkdir(path: string, mode: number) { await fsp.mkdir(this.abs(path), { mode }); }
  rmdir(path: string) { return fsp.rmdir(this.abs(path)); }
  unlink(path: string) { return fsp.unlink(this.abs(path)); }
  rename(from: string, to: string) { return fsp.rename(this.abs(from), this.abs(to)); }
  symlink(target: string, path: string) { return fsp.symlink(target, this.abs(path)); }
  readlink(path: string) { return fsp.readlink(this.abs(path)); }
  link(existing: string, path: string) { return fsp.link(this.abs(existing), this.abs(path)); }
  chmod(path: string, mode: number) { return fsp.chmod(this.abs(path), mode); }
  lchown(path: string, uid: number, gid: number) { return fsp.lchown(this.abs(path), uid, gid); }
  lutimes(path: string, atime: Date | number, mtime: Date | number) { return fsp.lutimes(this.abs(path), atime, mtime); }
  statfs(path: string) { return fsp.statfs(this.abs(path)); }
  getxattr(path: string, name: string) { return getXattrIfAny(this.abs(path), name, false); }
  setxattr(path: string, name: string, value: Uint8Array, flags = 0) { return setXattr(this.abs(path), name, value, flags, false); }
  listxattr(path: string) { return listXattr(this.abs(path), false); }
  removexattr(path: string, name: string) { return removeXattr(this.abs(path), name, false); }
}
