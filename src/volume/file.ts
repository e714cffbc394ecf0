/**
 * One open eCryptfs file on the lower directory: header, file key, and clear-view read, write
 * and truncate with the kernel's on-disk behaviour (ECRYPTFS-FORMAT §6):
 * whole extents are re-encrypted, gaps are filled with encrypted zeros (never holes), and the
 * size field is rewritten after the extents that it covers are on disk, so a crash leaves
 * the earlier contents readable.
 */
import { randomBytes, randomFillSync } from 'node:crypto';
import type { CipherName } from '../crypto/types.js';
import { EcryptfsError } from '../errors.js';
import { cryptoPool, ScratchPool, sharedBuffer } from '../crypto/pool.js';
import { FileCrypto } from './filecrypto.js';
import {
  buildHeaderBytes,
  buildHeaderRegion,
  FLAG_ENCRYPTED,
  FLAG_ENCRYPT_FILENAMES,
  FLAG_METADATA_IN_XATTR,
  hasMarker,
  HEADER_PARSE_BYTES,
  parseHeader,
  setHeaderSize,
  unwrapFek,
  wrapFek,
  type FileHeader,
} from '../format/header.js';
import { EXTENT_SIZE, extentsPresent } from '../format/offsets.js';
import type { LowerFile, LowerFs, LowerPath } from '../lower/lowerfs.js';

/** A lower file that carries its own extended attributes (descriptor-based: fgetxattr/fsetxattr). */
export interface LowerFileWithXattrs extends LowerFile {
  getxattr(name: string): Promise<Buffer | undefined>;
  setxattr(name: string, value: Uint8Array, flags?: number): Promise<void>;
  readonly label: string;
}
/** A lower file that also writes synchronously (the mount's descriptors): create answers without a promise. */
export interface LowerFileSync extends LowerFileWithXattrs {
  writeSync(buf: Uint8Array, offset: number, length: number, position: number): number;
  setxattrSync(name: string, value: Uint8Array, flags?: number): void;
}
import type { KeyRing } from './keyring.js';
import { RwLock } from './lock.js';

export const XATTR_NAME = 'user.ecryptfs';

/** A lower file with synchronous positioned I/O (the mount's descriptors): see readNow/writeNow. */
interface SyncLowerFile {
  readSync(buf: Uint8Array, offset: number, length: number, position: number): number;
  writeSync(buf: Uint8Array, offset: number, length: number, position: number): number;
}

function syncIoOf(fh: LowerFile): SyncLowerFile | undefined {
  const f = fh as Partial<SyncLowerFile>;
  return typeof f.readSync === 'function' && typeof f.writeSync === 'function' ? (f as SyncLowerFile) : undefined;
}
/** Clear bytes processed per lower I/O call: bounds memory for any file size. */
export const CHUNK = 1 << 20;

/**
 * Plaintext scratch for writes, shared by every file of the process and reused: a write holds its
 * file's lock and needs one only until it returns. Shared memory when there is a crypto pool, whose
 * threads encrypt their share of a large write in place (copies into shared memory are slower, so
 * plain memory without one). Each file had its own before, kept while it was open: a worker thread
 * keeps every SharedArrayBuffer it was sent until its own garbage collection, which rarely runs,
 * so writing many files grew the daemon by ~1 MiB per file (2 writers at once, 2 MiB files: 63 ->
 * 213 MiB after 600 files).
 */
const scratchPool = new ScratchPool(CHUNK + EXTENT_SIZE, 8, (bytes) => (cryptoPool().size > 0 ? sharedBuffer(bytes) : Buffer.allocUnsafeSlow(bytes)));

export interface NewFileParams {
  cipher: CipherName;
  keyBytes: number;
  /** Sigs of the auth-token keys that wrap the FEK (one Tag 3 + Tag 11 each). */
  sigs: string[];
  filenameEncryption: boolean;
  xattrMetadata: boolean;
}

export type FileKind = 'encrypted' | 'plain' | 'empty';

/** Read the clear size of a lower file cheaply (first 16 bytes, or the xattr), or undefined. */
export async function peekClearSize(lower: LowerFs, path: LowerPath, xattrMetadata: boolean): Promise<number | undefined> {
  const f = await lower.open(path, 'r');
  try {
    const b = Buffer.alloc(16);
    const n = await f.read(b, 0, 16, 0);
    if (n === 16 && hasMarker(b)) return Number(b.readBigUInt64BE(0));
  } finally {
    await f.close();
  }
  if (xattrMetadata) {
    const x = await lower.getxattr(path, XATTR_NAME);
    if (x && x.length >= 16 && hasMarker(x)) return Number(x.readBigUInt64BE(0));
  }
  return undefined;
}

/** A long write or truncate stopped between chunks (FUSE INTERRUPT, caller gone, daemon stopping). */
function interrupted(where: string): Error {
  return Object.assign(new Error(`${where}: interrupted; the file keeps the size reached so far`), { code: 'EINTR' });
}

/** The header xattr, from the descriptor when it carries xattrs, else by path. */
function metaOf(fh: LowerFile, lower: LowerFs | undefined, path: LowerPath): Promise<Buffer | undefined> {
  const fx = fh as Partial<LowerFileWithXattrs>;
  if (fx.getxattr) return fx.getxattr(XATTR_NAME);
  return lower ? lower.getxattr(path, XATTR_NAME) : Promise.resolve(undefined);
}

/**
 * Random bytes for new files' keys and header markers, drawn from the CSPRNG 4 KiB at a time: a
 * randomBytes call per create cost ~2 us, a take from here ~0.2. Bytes handed out are wiped from
 * the pool. (Per thread; a daemon is a new process, never a fork() of one that drew from it.)
 */
const randomPool = Buffer.alloc(4096);
let randomAt = randomPool.length;

function takeRandom(n: number): Buffer {
  if (n > randomPool.length) return randomBytes(n);
  if (randomAt + n > randomPool.length) {
    randomFillSync(randomPool);
    randomAt = 0;
  }
  const out = Buffer.from(randomPool.subarray(randomAt, randomAt + n));
  randomPool.fill(0, randomAt, randomAt + n);
  randomAt += n;
  return out;
}

/** The 8-byte size field at the head of a header, holding `size`. */
function sizeField(size: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  setHeaderSize(b, size);
  return b;
}

/** A file without a LowerFs named in messages: by its descriptor's label (built only then), else its path. */
function labelOf(fh: LowerFile, path: LowerPath): string {
  const label = (fh as Partial<LowerFileWithXattrs>).label;
  return label !== undefined && path === '' ? label : path.toString();
}

export class EcryptfsFile {
  private constructor(
    /** The path-based lower, or undefined for a file opened by descriptor (xattrs on `fh`). */
    private readonly lower: LowerFs | undefined,
    readonly path: LowerPath,
    private readonly fh: LowerFile,
    readonly writable: boolean,
    public kind: FileKind,
    private header: FileHeader | undefined,
    private content: FileCrypto | undefined,
    /** Lower offset of extent 0 (0 with xattr metadata). */
    private dataOffset: number,
    private headerInXattr: boolean,
    public size: number,
  ) {}

  private readonly lock = new RwLock();
  /** Synchronous I/O on the lower file, when it has it (readNow/writeNow). */
  private get syncIo(): SyncLowerFile | undefined {
    return syncIoOf(this.fh);
  }

  get cipherName(): CipherName | undefined {
    return this.content?.cipher.name;
  }

  get fileHeader(): FileHeader | undefined {
    return this.header;
  }

  /**
   * Open an existing lower file. Without a valid header: EBADHEADER, unless `passthrough`
   * (then the lower bytes are the clear bytes) or the lower file is empty (the kernel turns
   * an empty lower file into a new eCryptfs file on first write).
   */
  static async open(
    lower: LowerFs,
    path: LowerPath,
    keys: KeyRing,
    opts: { writable: boolean; passthrough?: boolean; xattrMetadata?: boolean; newFile?: NewFileParams },
  ): Promise<EcryptfsFile> {
    const fh = await lower.open(path, opts.writable ? 'rw' : 'r');
    return EcryptfsFile.openOn(fh, lower, path, keys, opts);
  }

  /**
   * Open on a lower file already opened (by descriptor, as the mount does: no path is resolved;
   * xattrs are read from the descriptor). `label` names the file in messages. Closes `fh` on failure.
   */
  static openHandle(fh: LowerFileWithXattrs, keys: KeyRing, opts: { writable: boolean; passthrough?: boolean; xattrMetadata?: boolean }): Promise<EcryptfsFile> {
    return EcryptfsFile.openOn(fh, undefined, '', keys, opts);
  }

  private static async openOn(
    fh: LowerFile,
    lower: LowerFs | undefined,
    path: LowerPath,
    keys: KeyRing,
    opts: { writable: boolean; passthrough?: boolean; xattrMetadata?: boolean },
  ): Promise<EcryptfsFile> {
    try {
      const head = Buffer.alloc(HEADER_PARSE_BYTES);
      const n = await fh.read(head, 0, head.length, 0);
      let header: FileHeader | undefined;
      let inXattr = false;
      if (n >= 16 && hasMarker(head)) {
        header = parseHeader(head.subarray(0, n), 'file');
      } else {
        const x = await metaOf(fh, lower, path).catch(() => undefined);
        if (x && x.length >= 16 && hasMarker(x)) {
          header = parseHeader(x, 'xattr');
          inXattr = true;
        }
      }
      if (!header) {
        const st = await fh.stat();
        if (opts.passthrough) return new EcryptfsFile(lower, path, fh, opts.writable, 'plain', undefined, undefined, 0, false, st.size);
        if (st.size === 0) return new EcryptfsFile(lower, path, fh, opts.writable, 'empty', undefined, undefined, 0, false, 0);
        throw new EcryptfsError(
          'EBADHEADER',
          'not a valid eCryptfs file (no eCryptfs header in the file or its user.ecryptfs xattr); mount with passthrough to read it as plain',
        );
      }
      let wrapped = header.keys.find((k) => keys.has(k.sig));
      let outsideKey: Buffer | undefined;
      const outside = wrapped ? undefined : keys.outside;
      for (const k of outside ? header.keys : []) {
        outsideKey = await outside!(k.sig).catch(() => undefined);
        if (outsideKey) {
          wrapped = k;
          break;
        }
      }
      if (!wrapped) {
        const sigs = [...header.keys.map((k) => k.sig), ...header.publicKeySigs];
        throw new EcryptfsError('ENOKEY', `encrypted with another key (sig ${sigs.join(', ')}); supply the passphrase of that key`);
      }
      const { cipher, fek } = unwrapFek(wrapped, outsideKey ?? keys.get(wrapped.sig)!.key);
      outsideKey?.fill(0);
      const content = new FileCrypto(cipher, fek, header.extentSize);
      fek.fill(0);
      const dataOffset = inXattr ? 0 : header.metadataSize;
      return new EcryptfsFile(lower, path, fh, opts.writable, 'encrypted', header, content, dataOffset, inXattr, header.size);
    } catch (e) {
      await fh.close();
      throw e instanceof EcryptfsError ? e.withPath(lower ? lower.abs(path) : labelOf(fh, path)) : e;
    }
  }

  /**
   * A new, empty eCryptfs file on a lower file just created (exclusively, by descriptor) with a
   * fresh random FEK. On failure `fh` is closed; removing the lower name is the caller's.
   */
  static async createHandle(fh: LowerFileWithXattrs, keys: KeyRing, p: NewFileParams): Promise<EcryptfsFile> {
    try {
      const f = new EcryptfsFile(undefined, '', fh, true, 'empty', undefined, undefined, 0, false, 0);
      await f.initialize(keys, p);
      return f;
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /**
   * createHandle, synchronously (header write included): the header is small and the lower
   * descriptor local, so this costs less than a trip through the event loop.
   */
  static createHandleSync(fh: LowerFileSync, keys: KeyRing, p: NewFileParams): EcryptfsFile {
    try {
      const f = new EcryptfsFile(undefined, '', fh, true, 'empty', undefined, undefined, 0, false, 0);
      const init = f.newKey(keys, p);
      try {
        if (init.inXattr) fh.setxattrSync(XATTR_NAME, init.bytes);
        else for (let done = 0; done < init.bytes.length; ) done += fh.writeSync(init.bytes, done, init.bytes.length - done, done);
        f.adopt(init);
      } finally {
        init.fek.fill(0);
      }
      return f;
    } catch (e) {
      fh.close().catch(() => undefined);
      throw e;
    }
  }

  /** Create a new, empty eCryptfs file (exclusive) with a fresh random FEK. */
  static async create(lower: LowerFs, path: LowerPath, keys: KeyRing, p: NewFileParams, mode = 0o600): Promise<EcryptfsFile> {
    const fh = await lower.open(path, 'create-exclusive', mode);
    try {
      const f = new EcryptfsFile(lower, path, fh, true, 'empty', undefined, undefined, 0, false, 0);
      await f.initialize(keys, p);
      return f;
    } catch (e) {
      await fh.close();
      await lower.unlink(path).catch(() => undefined);
      throw e;
    }
  }

  /** Give an empty lower file its header and key (kernel: ecryptfs_new_file_context + write_metadata). */
  async initialize(keys: KeyRing, p: NewFileParams): Promise<void> {
    const init = this.newKey(keys, p);
    try {
      if (init.inXattr) await this.setMeta(init.bytes);
      else await this.fh.write(init.bytes, 0, init.bytes.length, 0);
      this.adopt(init);
    } finally {
      init.fek.fill(0);
    }
  }

  /** A fresh random FEK, wrapped by every key of `p`, and the header bytes to store (not yet stored). */
  private newKey(keys: KeyRing, p: NewFileParams): { fek: Buffer; header: FileHeader; cipher: CipherName; bytes: Buffer; inXattr: boolean } {
    const fek = takeRandom(p.keyBytes);
    const marker = takeRandom(4);
    try {
      const wrapped = p.sigs.map((sig) => {
        const k = keys.get(sig);
        if (!k) throw new EcryptfsError('ENOKEY', `no key with sig ${sig} to encrypt new files`);
        return wrapFek(fek, p.cipher, k.key, sig, keys.wrapCipher(sig, p.cipher, p.keyBytes));
      });
      const flags = FLAG_ENCRYPTED | (p.filenameEncryption ? FLAG_ENCRYPT_FILENAMES : 0) | (p.xattrMetadata ? FLAG_METADATA_IN_XATTR : 0);
      const fields = { size: 0, flags, keys: wrapped };
      const header: FileHeader = { size: 0, version: 3, flags, extentSize: EXTENT_SIZE, headerExtents: 2, metadataSize: 8192, keys: wrapped, publicKeySigs: [] };
      return { fek, header, cipher: p.cipher, bytes: p.xattrMetadata ? buildHeaderBytes(fields, marker) : buildHeaderRegion(fields, marker), inXattr: p.xattrMetadata };
    } catch (e) {
      fek.fill(0);
      throw e;
    }
  }

  /** The header of newKey() is stored: this is now an empty encrypted file with that key. */
  private adopt(init: { fek: Buffer; header: FileHeader; cipher: CipherName; bytes: Buffer; inXattr: boolean }): void {
    this.dataOffset = init.inXattr ? 0 : init.bytes.length;
    this.headerInXattr = init.inXattr;
    this.header = init.header;
    this.content = new FileCrypto(init.cipher, init.fek);
    this.kind = 'encrypted';
    this.size = 0;
  }

  private setMeta(v: Uint8Array): Promise<void> {
    const fx = this.fh as Partial<LowerFileWithXattrs>;
    if (fx.setxattr) return fx.setxattr(XATTR_NAME, v);
    return this.lower!.setxattr(this.path, XATTR_NAME, v);
  }

  /** The file's name for messages. */
  private get where(): string {
    return this.lower ? this.lower.abs(this.path) : labelOf(this.fh, this.path);
  }

  private get extentSize(): number {
    return this.content?.extentSize ?? EXTENT_SIZE;
  }

  /** Read clear bytes [pos, pos+length) (shorter at EOF) into a new buffer. */
  async read(pos: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(Math.max(0, Math.min(length, this.size - pos)));
    const n = await this.readInto(out, pos);
    return out.subarray(0, n);
  }

  /** Read into `buf` from clear offset `pos`; returns bytes read (0 at EOF). */
  readInto(buf: Buffer, pos: number): Promise<number> {
    return this.lock.read(async () => {
      const len = Math.max(0, Math.min(buf.length, this.size - pos));
      if (len === 0) return 0;
      if (this.kind === 'plain') return this.fh.read(buf, 0, len, pos);
      const es = this.extentSize;
      let done = 0;
      while (done < len) {
        const p = pos + done;
        const first = Math.floor(p / es);
        const want = Math.min(len - done, CHUNK);
        const last = Math.floor((p + want - 1) / es);
        const count = last - first + 1;
        const skip = p - first * es;
        if (skip === 0 && want === count * es) {
          // Aligned whole extents: decrypt straight into the caller's buffer.
          await this.readExtents(buf.subarray(done, done + want), first, count);
          done += want;
          continue;
        }
        const scratch = Buffer.allocUnsafe(count * es);
        await this.readExtents(scratch, first, count);
        const take = Math.min(want, scratch.length - skip);
        scratch.copy(buf, done, skip, skip + take);
        done += take;
      }
      return done;
    });
  }

  /**
   * Read and decrypt whole extents [first, first+count) into dst. A large run on a descriptor the
   * pool's threads may use is shared with them (see FileCrypto.readAndDecrypt); the rest stays on
   * this thread (decryption is one OpenSSL call per run, less than a hand-off costs).
   */
  private async readExtents(dst: Buffer, first: number, count: number): Promise<void> {
    const c = this.content!, es = this.extentSize;
    const fd = this.fh.poolFd;
    if (fd !== undefined && c.large(count)) {
      // A large run: the pool's threads may read and decrypt their shares beside this thread's.
      const at = this.dataOffset + first * es;
      const n = await c.readAndDecrypt(dst, first, count, { fd, position: at }, (d, k) => this.fh.read(d, 0, k * es, at));
      if (n < count * es) throw this.shortLower(first, n);
      return;
    }
    await this.readLower(dst, first, count);
    c.decrypt(dst, dst, first, count);
  }

  /** Read the encrypted extents [first, first+count) into dst, which must be whole. */
  private async readLower(dst: Buffer, first: number, count: number): Promise<void> {
    const es = this.extentSize;
    const bytes = count * es;
    const n = await this.fh.read(dst, 0, bytes, this.dataOffset + first * es);
    if (n < bytes) throw this.shortLower(first, n);
  }

  /** A lower file that ends before the extents its size field covers. */
  private shortLower(first: number, n: number): EcryptfsError {
    const es = this.extentSize;
    const have = extentsPresent(this.dataOffset + first * es + n, this.dataOffset, es);
    return new EcryptfsError(
      'ECORRUPT',
      `truncated or damaged: the size field says ${this.size} bytes but the lower file ends after extent ${have} (restore it from a backup)`,
      this.where,
    );
  }

  /** readExtents on this thread (synchronous lower read). */
  private readExtentsSync(io: SyncLowerFile, dst: Buffer, first: number, count: number): void {
    const bytes = count * this.extentSize;
    const n = io.readSync(dst, 0, bytes, this.dataOffset + first * this.extentSize);
    if (n < bytes) throw this.shortLower(first, n);
    this.content!.decrypt(dst, dst, first, count);
  }

  /**
   * The mount's fast path for a request of at most `max` bytes (max <= CHUNK): read on this
   * thread and return the clear bytes, or undefined when it must take read() instead (lock taken,
   * no synchronous lower I/O, too big). A FUSE server answering without a promise keeps reading
   * /dev/fuse on its own thread: no thread-pool or event-loop hop per request.
   * With `scratch` (a server that writes each answer before it reads the next request), the
   * extents are read and decrypted in it and the answer is a view into it, valid until scratch is
   * used again: no buffer is allocated (a 4 KiB Buffer is a fresh ArrayBuffer, not a pool slice,
   * and the young-generation GCs sweep them) and an unaligned request is not copied. A scratch
   * shorter than the extents the request covers is not used.
   */
  readNow(pos: number, length: number, max: number, scratch?: Buffer): Buffer | undefined {
    const io = this.syncIo;
    if (!io || length > Math.min(max, CHUNK) || !this.lock.readFree) return undefined;
    const len = Math.max(0, Math.min(length, this.size - pos));
    if (len === 0) return Buffer.alloc(0);
    if (this.kind === 'plain') {
      const out = scratch && scratch.length >= len ? scratch : Buffer.allocUnsafe(len);
      return out.subarray(0, io.readSync(out, 0, len, pos));
    }
    const es = this.extentSize;
    const first = Math.floor(pos / es);
    const count = Math.floor((pos + len - 1) / es) - first + 1;
    const skip = pos - first * es;
    if (scratch && scratch.length >= count * es) {
      this.readExtentsSync(io, scratch, first, count);
      return scratch.subarray(skip, skip + len);
    }
    if (skip === 0 && len === count * es) {
      const out = Buffer.allocUnsafe(len);
      this.readExtentsSync(io, out, first, count);
      return out;
    }
    const whole = Buffer.allocUnsafe(count * es);
    this.readExtentsSync(io, whole, first, count);
    const out = Buffer.allocUnsafe(len);
    whole.copy(out, 0, skip, skip + len);
    return out;
  }

  private async writeSizeField(size: number): Promise<void> {
    if (this.headerInXattr) {
      const x = (await metaOf(this.fh, this.lower, this.path)) ?? Buffer.alloc(8);
      setHeaderSize(x, size);
      await this.setMeta(x);
    } else {
      await this.fh.write(sizeField(size), 0, 8, 0);
    }
    this.sizeIs(size);
  }

  private sizeIs(size: number): void {
    this.size = size;
    if (this.header) this.header.size = size;
  }

  private ensureWritable(): void {
    if (!this.writable) throw new EcryptfsError('EINVAL', 'file is open read-only', this.where);
  }

  /**
   * Write `data` at clear offset `pos`; a gap past EOF becomes encrypted zeros. As with pwrite(2),
   * writing nothing changes nothing (`extendTo` is truncate's way to grow the file).
   */
  write(pos: number, data: Uint8Array, keys?: KeyRing, newFile?: NewFileParams, extendTo = false, stop?: () => boolean): Promise<number> {
    if (data.length === 0 && !extendTo) return Promise.resolve(0);
    return this.lock.write(async () => {
      this.ensureWritable();
      if (this.kind === 'empty') {
        if (!keys || !newFile) throw new EcryptfsError('EINVAL', 'empty lower file needs keys to become an eCryptfs file', this.where);
        await this.initialize(keys, newFile);
      }
      if (this.kind === 'plain') {
        await this.fh.write(data, 0, data.length, pos);
        this.size = Math.max(this.size, pos + data.length);
        return data.length;
      }
      // Fill any gap between EOF and pos with zeros first, chunk by chunk.
      // Between chunks the file is consistent (size field after its extents): stop there if asked.
      while (this.size < pos) {
        if (stop?.()) throw interrupted(this.where);
        const n = Math.min(pos - this.size, CHUNK);
        await this.writeRange(this.size, Buffer.alloc(n));
      }
      for (let done = 0; done < data.length; ) {
        if (done > 0 && stop?.()) throw interrupted(this.where);
        const n = Math.min(data.length - done, CHUNK);
        await this.writeRange(pos + done, data.subarray(done, done + n));
        done += n;
      }
      return data.length;
    });
  }

  /**
   * First half of writing [pos, pos+len) (pos <= size): the scratch for the extents it covers,
   * zeros around where the data goes, and which partial extents hold old data to read and
   * decrypt into it (`old`: extent indexes within plain) before stageData.
   */
  private stageRange(pos: number, len: number): { scratch: Buffer; plain: Buffer; first: number; count: number; head: number; old: number[] } {
    const es = this.extentSize;
    const end = pos + len;
    const first = Math.floor(pos / es);
    const last = Math.floor((end - 1) / es);
    const count = last - first + 1;
    const scratch = scratchPool.take(count * es);
    const plain = scratch.subarray(0, count * es);
    // data goes to [head, head + len); only the bytes around it need old contents or zeros.
    const head = pos - first * es;
    plain.fill(0, 0, head);
    plain.fill(0, head + len);
    const existing = Math.ceil(this.size / es);
    const old: number[] = [];
    if (pos % es !== 0 && first < existing) old.push(0);
    if (end % es !== 0 && last < existing && (last !== first || pos % es === 0)) old.push(count - 1);
    return { scratch, plain, first, count, head, old };
  }

  /** Second half: zeros past the old EOF, then the data (the old extents are in plain by now). */
  private stageData(st: { plain: Buffer; first: number; head: number }, data: Uint8Array): void {
    const { plain, head } = st;
    const tail = head + data.length;
    // Old bytes past EOF inside the last extent must be zero (LP 509180: no trailing garbage).
    const oldEnd = Math.max(this.size - st.first * this.extentSize, 0);
    if (oldEnd < head) plain.fill(0, oldEnd, head);
    if (oldEnd < plain.length) plain.fill(0, Math.max(oldEnd, tail));
    // Buffer.copy is a memcpy; TypedArray.set is several times slower, more so into shared memory.
    Buffer.from(data.buffer, data.byteOffset, data.length).copy(plain, head);
  }

  /**
   * The mount's fast path for a write of at most `max` bytes (max <= CHUNK) inside or at the end
   * of the file: encrypt and store it on this thread and return the bytes written, or undefined
   * when it must take write() instead (lock taken, a gap to fill, header in the xattr, no
   * synchronous lower I/O). Same order as write(): extents first, then the size field.
   */
  writeNow(pos: number, data: Uint8Array, max: number): number | undefined {
    const io = this.syncIo;
    if (!io || this.kind !== 'encrypted' || this.headerInXattr || !this.writable) return undefined;
    if (data.length === 0 || data.length > Math.min(max, CHUNK) || pos > this.size || !this.lock.writeFree) return undefined;
    const es = this.extentSize;
    const st = this.stageRange(pos, data.length);
    try {
      // Whole extents are encrypted from the request's buffer into the scratch, as in writeRange.
      if (st.head === 0 && data.length === st.count * es) this.content!.encrypt(data, st.plain, st.first, st.count);
      else {
        for (const o of st.old) this.readExtentsSync(io, st.plain.subarray(o * es, o * es + es), st.first + o, 1);
        this.stageData(st, data);
        this.content!.encrypt(st.plain, st.plain, st.first, st.count);
      }
      io.writeSync(st.plain, 0, st.plain.length, this.dataOffset + st.first * es);
    } finally {
      scratchPool.give(st.scratch);
    }
    const end = pos + data.length;
    if (end > this.size) {
      io.writeSync(sizeField(end), 0, 8, 0);
      this.sizeIs(end);
    }
    return data.length;
  }

  /** Re-encrypt the extents covering [pos, pos+data.length) (pos <= size), then the size field. */
  private async writeRange(pos: number, data: Uint8Array): Promise<void> {
    if (data.length === 0) return;
    const es = this.extentSize;
    const end = pos + data.length;
    const st = this.stageRange(pos, data.length);
    const { plain, first, count } = st;
    try {
      // Partial first/last extents that hold old data: read and decrypt them.
      for (const o of st.old) await this.readExtents(plain.subarray(o * es, o * es + es), first + o, 1);
      // Whole extents are encrypted from the caller's buffer into the scratch: no copy into it first.
      const whole = st.head === 0 && data.length === count * es;
      if (!whole) this.stageData(st, data);
      // A large run is encrypted by this thread and the crypto pool together: store the extents this
      // thread has done while the pool finishes the rest (still all before the size field).
      let stored = 0;
      await this.content!.encryptInto(whole ? data : plain, plain, first, count, async (done) => {
        await this.fh.write(plain, 0, done * es, this.dataOffset + first * es);
        stored = done * es;
      });
      await this.fh.write(plain, stored, plain.length - stored, this.dataOffset + first * es + stored);
    } finally {
      // encryptInto returns only once the pool's threads are done with it, failed or not.
      scratchPool.give(st.scratch);
    }
    if (end > this.size) await this.writeSizeField(end);
  }

  /** Change the clear size: up fills with encrypted zeros, down re-encrypts the new last extent. */
  truncate(size: number, keys?: KeyRing, newFile?: NewFileParams, stop?: () => boolean): Promise<void> {
    if (size > this.size && this.kind !== 'plain') return this.write(size, new Uint8Array(0), keys, newFile, true, stop).then(() => undefined);
    return this.lock.write(async () => {
      this.ensureWritable();
      if (size === this.size) return;
      if (this.kind === 'plain') {
        await this.fh.truncate(size);
        this.size = size;
        return;
      }
      const es = this.extentSize;
      if (size % es !== 0) {
        const idx = Math.floor(size / es);
        const ext = Buffer.alloc(es);
        await this.readExtents(ext, idx, 1);
        ext.fill(0, size - idx * es);
        this.content!.encrypt(ext, ext, idx, 1);
        await this.fh.write(ext, 0, es, this.dataOffset + idx * es);
      }
      await this.writeSizeField(size);
      await this.fh.truncate(this.dataOffset + Math.ceil(size / es) * es);
    });
  }

  sync(): Promise<void> {
    return this.fh.sync();
  }

  /** fstat of the lower file (works after the lower name is gone). */
  lowerStat() {
    return this.fh.stat();
  }

  /** Close at once if no read or write is in progress (true), else leave it to close() (false). */
  closeIfIdle(): boolean {
    if (!this.lock.writeFree) return false; // a read or write in progress, or waiting
    this.content?.destroy();
    this.content = undefined;
    this.fh.close().catch(() => undefined);
    return true;
  }

  /** Close once reads and writes in progress are done (never under them: the descriptor could be reused). */
  close(): Promise<void> {
    return this.lock.write(async () => {
      this.content?.destroy();
      await this.fh.close();
    });
  }
}
