/**
 * An eCryptfs volume: a lower directory seen through its keys, with clear names, clear sizes and
 * clear contents. Path-based; paths are clear paths relative to the volume root with '/'
 * separators ('' is the root). This is the library API; the mount and the CLI sit on top.
 */
import { Readable } from 'node:stream';
import type { Stats } from 'node:fs';
import type { CipherName } from '../crypto/types.js';
import { EcryptfsError, isEcryptfsError } from '../errors.js';
import { checkKeyBytes, cipherCode, cipherFromCode, CIPHERS } from '../format/ciphers.js';
import { decryptFilename, FilenameEncryptor, FNEK_PREFIX, parseEncryptedFilename, maxClearNameLength } from '../format/filename.js';
import { NodeLowerFs, type LowerFs, type LowerPath } from '../lower/lowerfs.js';
import { escapeName } from './names.js';
import { CHUNK, EcryptfsFile, peekClearSize, type NewFileParams } from './file.js';
import type { KeyRing } from './keyring.js';

export interface VolumeOptions {
  /** Cipher and key size for new files (ecryptfs_cipher, ecryptfs_key_bytes). Default aes, 16. */
  cipher?: CipherName;
  keyBytes?: number;
  /** Sigs that wrap the FEK of new files (ecryptfs_sig). Default: the first key added to the ring. */
  sigs?: string[];
  /**
   * FNEK sig (ecryptfs_fnek_sig): names are encrypted when set. `undefined` = detect from the
   * encrypted names already in the lower root; `null` = filename encryption off.
   */
  fnekSig?: string | null;
  fnCipher?: CipherName;
  fnKeyBytes?: number;
  /** Non-eCryptfs lower files read and write as plain (ecryptfs_passthrough). */
  passthrough?: boolean;
  /** New files keep their header in the user.ecryptfs xattr (ecryptfs_xattr_metadata). */
  xattrMetadata?: boolean;
  readOnly?: boolean;
}

/** 'other' is left for a type Linux does not have (never seen on a Linux lower directory). */
export type EntryType = 'file' | 'dir' | 'symlink' | 'fifo' | 'socket' | 'char-device' | 'block-device' | 'other';

export interface DirEntry {
  /** Clear name as text (UTF-8; lossy for other bytes: use nameBytes); for a name that does not decode, the lower name. */
  name: string;
  /** The clear name's exact bytes (the lower name's when it does not decode). */
  nameBytes: Buffer;
  lowerName: string;
  lowerNameBytes: Buffer;
  type: EntryType;
  /** Set when the lower name looks encrypted but does not decode with the keys at hand. */
  error?: EcryptfsError;
}

export interface EntryStat {
  type: EntryType;
  /** Clear size (files: from the header; symlinks: clear target length; else lower size). */
  size: number;
  /** Set when a regular file is not eCryptfs (passthrough or damaged). */
  plain?: boolean;
  lower: Stats;
}

export function typeOf(st: Stats): EntryType {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'dir';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isCharacterDevice()) return 'char-device';
  if (st.isBlockDevice()) return 'block-device';
  return 'other';
}

function isDotName(b: Buffer): boolean {
  return (b.length === 1 && b[0] === 0x2e) || (b.length === 2 && b[0] === 0x2e && b[1] === 0x2e);
}

/**
 * Throw EBADNAME unless `name` can be one path component: not empty, not '.' or '..', no '/'
 * and no NUL. Every decrypted name passes here before it is used as a path.
 */
export function checkClearName(name: Uint8Array, lowerName?: string): void {
  const b = Buffer.from(name.buffer, name.byteOffset, name.byteLength);
  if (b.length === 0 || isDotName(b) || b.includes(0x2f) || b.includes(0)) {
    throw new EcryptfsError('EBADNAME', `name decrypts to ${JSON.stringify(b.toString('latin1'))}, which is not a file name (empty, '.', '..', or holding '/' or NUL); it is skipped`, lowerName);
  }
}

export function splitPath(p: string): string[] {
  return p.split('/').filter((c) => c !== '' && c !== '.');
}

const SLASH = Buffer.from('/');

/** splitPath for bytes. */
export function splitBytes(p: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= p.length; i++) {
    if (i === p.length || p[i] === 0x2f) {
      const c = p.subarray(start, i);
      if (c.length > 0 && !(c.length === 1 && c[0] === 0x2e)) out.push(c);
      start = i + 1;
    }
  }
  return out;
}

export class Volume {
  readonly lower: LowerFs;
  readonly keys: KeyRing;
  readonly cipher: CipherName;
  readonly keyBytes: number;
  readonly sigs: string[];
  readonly fnekSig: string | undefined;
  readonly fnCipher: CipherName;
  fnKeyBytes: number;
  readonly passthrough: boolean;
  readonly xattrMetadata: boolean;
  readonly readOnly: boolean;
  /** Key size that decrypted names of a given sig+cipher code (for ciphers whose code has no size). */
  private readonly nameKeyBytes = new Map<string, number>();

  private constructor(lower: LowerFs, keys: KeyRing, o: Required<Omit<VolumeOptions, 'fnekSig' | 'fnCipher' | 'fnKeyBytes'>> & { fnekSig?: string; fnCipher?: CipherName; fnKeyBytes?: number }) {
    this.lower = lower;
    this.keys = keys;
    this.cipher = o.cipher;
    this.keyBytes = o.keyBytes;
    this.sigs = o.sigs;
    this.fnekSig = o.fnekSig;
    this.fnCipher = o.fnCipher ?? o.cipher;
    this.fnKeyBytes = o.fnKeyBytes ?? o.keyBytes;
    this.passthrough = o.passthrough;
    this.xattrMetadata = o.xattrMetadata;
    this.readOnly = o.readOnly;
  }

  /** Open a lower directory with the keys in `keys`. */
  static async open(lowerRoot: string | LowerFs, keys: KeyRing, opts: VolumeOptions = {}): Promise<Volume> {
    const lower = typeof lowerRoot === 'string' ? new NodeLowerFs(lowerRoot) : lowerRoot;
    const st = await lower.stat('').catch((e: unknown) => {
      throw cannotOpenLower(e, lower.root);
    });
    if (!st.isDirectory()) throw new EcryptfsError('EINVAL', 'the lower path is not a directory', lower.root);
    const cipher = opts.cipher ?? 'aes';
    const keyBytes = opts.keyBytes ?? 16;
    checkKeyBytes(cipher, keyBytes);
    const sigs = opts.sigs ?? keys.sigs.slice(0, 1);
    let fnekSig: string | undefined = opts.fnekSig ?? undefined;
    let fnCipher = opts.fnCipher;
    let fnKeyBytes = opts.fnKeyBytes;
    if (opts.fnekSig === undefined) {
      const found = await detectFnek(lower, keys);
      fnekSig = found?.sig;
      fnCipher ??= found?.cipher;
      fnKeyBytes ??= found?.keyBytes;
    }
    if (fnekSig !== undefined && !keys.has(fnekSig)) {
      throw new EcryptfsError('ENOKEY', `no key with the filename-encryption sig ${fnekSig}; supply its passphrase`);
    }
    return new Volume(lower, keys, {
      cipher, keyBytes, sigs, fnekSig, fnCipher, fnKeyBytes,
      passthrough: opts.passthrough ?? false, xattrMetadata: opts.xattrMetadata ?? false, readOnly: opts.readOnly ?? false,
    });
  }

  get filenameEncryption(): boolean {
    return this.fnekSig !== undefined;
  }

  /** Longest clear name (bytes) that this volume can store. */
  get nameMax(): number {
    return this.filenameEncryption ? maxClearNameLength(this.fnCipher) : 255;
  }

  newFileParams(): NewFileParams {
    if (this.sigs.length === 0) throw new EcryptfsError('ENOKEY', 'no key to encrypt new files with');
    return { cipher: this.cipher, keyBytes: this.keyBytes, sigs: this.sigs, filenameEncryption: this.filenameEncryption, xattrMetadata: this.xattrMetadata };
  }

  /** The FNEK's name cipher, set up on first use (every new name, lookups of missing names). */
  private nameEncryptor: FilenameEncryptor | undefined;

  private nameCodec(): FilenameEncryptor {
    return (this.nameEncryptor ??= new FilenameEncryptor(this.fnek(), this.fnCipher, this.fnKeyBytes));
  }

  private fnek() {
    return this.keys.get(this.fnekSig!)!;
  }

  /** Clear name component → lower name component. */
  encodeName(clear: string): string {
    if (!this.filenameEncryption || clear === '.' || clear === '..') return clear;
    return this.encodeNameBytes(Buffer.from(clear, 'utf8')).toString('latin1');
  }

  /**
   * Clear name bytes → lower name bytes. Names are byte strings (Linux allows any byte but '/'
   * and NUL); this is the lossless form under the string API above.
   */
  encodeNameBytes(clear: Uint8Array): Buffer {
    const b = Buffer.from(clear.buffer, clear.byteOffset, clear.byteLength);
    if (!this.filenameEncryption || isDotName(b)) return Buffer.from(b);
    if (b.length > this.nameMax) {
      throw new EcryptfsError('ENAMETOOLONG', `name of ${b.length} bytes is longer than the ${this.nameMax} bytes an encrypted name can hold (the kernel's limit too): use a shorter name`, escapeName(b));
    }
    return Buffer.from(this.nameCodec().encrypt(b), 'latin1');
  }

  /**
   * Lower name bytes → clear name bytes, checked: a clear name that is empty, '.', '..' or holds
   * '/' or NUL is refused (EBADNAME), since it would be a path and not a name (a lower tree made
   * by someone holding the key can carry any bytes in an encrypted name).
   */
  decodeNameBytes(lower: Uint8Array): Buffer {
    return this.decodeNameExact(lower).clear;
  }

  /**
   * decodeNameBytes, and whether encodeNameBytes(clear) gives back exactly `lower`, so a caller
   * may keep the translation both ways without encrypting the name again. True only for a name
   * this volume's encoder makes: FNEK prefix, this FNEK's sig, its cipher and key size, the text
   * strictly canonical (parseEncryptedFilename) and the name prefix verified (decryptFilename).
   * Then the packet length field (minimal form only), the prefix length (fixed by the name's
   * length) and the one-to-one ECB block are all the encoder's.
   */
  decodeNameExact(lower: Uint8Array): { clear: Buffer; exact: boolean } {
    const b = Buffer.from(lower.buffer, lower.byteOffset, lower.byteLength);
    if (isDotName(b)) return { clear: Buffer.from(b), exact: false };
    const text = b.toString('latin1');
    let clear: Buffer;
    let exact = false;
    if (text.startsWith(FNEK_PREFIX)) ({ name: clear, exact } = this.decodeBytesExact(text));
    else clear = Buffer.from(b);
    checkClearName(clear, text);
    return { clear, exact: exact && clear.length <= this.nameMax && b.length <= 255 };
  }

  /**
   * Lower name component → clear name. Names without the FNEK prefix are shown as they are
   * (as in the seed's session); names with it must decode with a key we hold.
   */
  decodeName(lowerName: string): string {
    return this.decodeNameBytes(Buffer.from(lowerName, 'utf8')).toString('utf8');
  }

  private decodeBytes(lowerText: string): Buffer {
    // lowerText is the lower bytes read as Latin-1: back to those very bytes.
    if (!lowerText.startsWith(FNEK_PREFIX)) return Buffer.from(lowerText, 'latin1');
    return this.decodeBytesExact(lowerText).name;
  }

  /** decodeBytes of an FNEK-prefixed name, and whether it is exactly what encodeNameBytes makes (see decodeNameExact). */
  private decodeBytesExact(lowerText: string): { name: Buffer; exact: boolean } {
    const parsed = parseEncryptedFilename(lowerText);
    const k = this.keys.get(parsed.sig) ?? this.keys.outsideSync?.(parsed.sig);
    if (!k) throw new EcryptfsError('ENOKEY', `name encrypted with another key (sig ${parsed.sig})`, lowerText);
    const info = cipherFromCode(parsed.cipherCode);
    const cacheKey = `${parsed.sig}:${parsed.cipherCode}`;
    const sizes = info.keyBytes !== undefined ? [info.keyBytes] : [this.nameKeyBytes.get(cacheKey) ?? this.fnKeyBytes, ...CIPHERS[info.name].keySizes];
    let lastErr: unknown;
    for (const size of new Set(sizes)) {
      try {
        // The volume's own FNEK, cipher and size: its codec, set up once (see FilenameEncryptor.decrypt).
        const mine = parsed.sig === this.fnekSig && info.name === this.fnCipher && size === this.fnKeyBytes;
        const name = mine && k === this.keys.get(parsed.sig) ? this.nameCodec().decrypt(parsed.ciphertext) : decryptFilename(parsed, k, info.name, size);
        this.nameKeyBytes.set(cacheKey, size);
        return { name, exact: mine && parsed.cipherCode === cipherCode(this.fnCipher, this.fnKeyBytes) };
      } catch (e) {
        lastErr = e;
      }
    }
    throw isEcryptfsError(lastErr) ? lastErr.withPath(lowerText) : new EcryptfsError('EBADNAME', 'encrypted name does not decode', lowerText);
  }

  /** Clear path bytes → lower path bytes (each component encoded): the lossless lowerPath. */
  lowerPathBytes(clearPath: Uint8Array): Buffer {
    const parts: Buffer[] = [];
    for (const c of splitBytes(Buffer.from(clearPath))) parts.push(this.encodeNameBytes(c));
    return Buffer.concat(parts.flatMap((p, i) => (i === 0 ? [p] : [SLASH, p])));
  }

  /** Clear path → lower path (each component encoded). */
  lowerPath(clearPath: string): string {
    return splitPath(clearPath).map((c) => this.encodeName(c)).join('/');
  }

  /**
   * Lower path of an existing entry: encrypted form first; with filename encryption on, a
   * plain lower name of the same text is also found (files put into the lower directory).
   */
  async resolve(clearPath: string): Promise<string> {
    const parts = splitPath(clearPath);
    let cur = '';
    for (const c of parts) {
      const enc = this.encodeName(c);
      const cand = cur === '' ? enc : `${cur}/${enc}`;
      if (enc !== c) {
        const exists = await this.lower.lstat(cand).then(() => true, () => false);
        if (!exists) {
          const plain = cur === '' ? c : `${cur}/${c}`;
          if (await this.lower.lstat(plain).then(() => true, () => false)) {
            cur = plain;
            continue;
          }
        }
      }
      cur = cand;
    }
    return cur;
  }

  async readdir(clearDir = ''): Promise<DirEntry[]> {
    const dir = await this.resolve(clearDir);
    return this.readdirLower(Buffer.from(dir));
  }

  /** Entries of a lower directory given by its lower path (bytes: the lossless form). */
  async readdirLower(dir: LowerPath): Promise<DirEntry[]> {
    const d = Buffer.from(dir);
    const out: DirEntry[] = [];
    for (const lowerNameBytes of await this.lower.readdirBytes(d)) {
      const st = await this.lower.lstat(d.length === 0 ? lowerNameBytes : Buffer.concat([d, SLASH, lowerNameBytes])).catch(() => undefined);
      if (!st) continue;
      const type = typeOf(st);
      const lowerName = lowerNameBytes.toString('utf8');
      try {
        const nameBytes = this.decodeNameBytes(lowerNameBytes);
        out.push({ name: nameBytes.toString('utf8'), nameBytes, lowerName, lowerNameBytes, type });
      } catch (e) {
        if (!isEcryptfsError(e)) throw e;
        out.push({ name: lowerName, nameBytes: lowerNameBytes, lowerName, lowerNameBytes, type, error: e });
      }
    }
    return out;
  }

  /** lstat with clear sizes. */
  async stat(clearPath: string): Promise<EntryStat> {
    return this.statLower(await this.resolve(clearPath));
  }

  async statLower(lowerPath: LowerPath): Promise<EntryStat> {
    const st = await this.lower.lstat(lowerPath);
    const type = typeOf(st);
    if (type === 'file') {
      const size = await peekClearSize(this.lower, lowerPath, true).catch(() => undefined);
      return size === undefined ? { type, size: st.size, plain: true, lower: st } : { type, size, lower: st };
    }
    if (type === 'symlink') {
      const t = await this.readlinkLowerBytes(lowerPath).catch(() => undefined);
      return { type, size: t === undefined ? st.size : t.length, lower: st };
    }
    return { type, size: st.size, lower: st };
  }

  async openFile(clearPath: string, opts: { write?: boolean } = {}): Promise<EcryptfsFile> {
    return this.openLower(await this.resolve(clearPath), opts);
  }

  openLower(lowerPath: LowerPath, opts: { write?: boolean } = {}): Promise<EcryptfsFile> {
    if (opts.write) this.checkWritable();
    return EcryptfsFile.open(this.lower, lowerPath, this.keys, { writable: !!opts.write, passthrough: this.passthrough, xattrMetadata: this.xattrMetadata });
  }

  private checkWritable(): void {
    if (this.readOnly) throw new EcryptfsError('EINVAL', 'the volume is open read-only', this.lower.root);
  }

  /** Create a new empty file (fails with EEXIST when it exists). */
  async createFile(clearPath: string, mode = 0o644): Promise<EcryptfsFile> {
    this.checkWritable();
    return EcryptfsFile.create(this.lower, this.lowerPath(clearPath), this.keys, this.newFileParams(), mode);
  }

  async readFile(clearPath: string): Promise<Buffer> {
    const f = await this.openFile(clearPath);
    try {
      return await f.read(0, f.size);
    } finally {
      await f.close();
    }
  }

  /** A stream of clear bytes [start, end] (end inclusive, like fs.createReadStream). */
  createReadStream(clearPath: string, opts: { start?: number; end?: number; chunkSize?: number } = {}): Readable {
    const chunk = opts.chunkSize ?? CHUNK;
    let file: EcryptfsFile | undefined;
    let pos = opts.start ?? 0;
    const next = async (): Promise<Buffer | null> => {
      file ??= await this.openFile(clearPath);
      const stop = Math.min(file.size, opts.end === undefined ? Infinity : opts.end + 1);
      if (pos >= stop) return null;
      const b = Buffer.allocUnsafe(Math.min(chunk, stop - pos));
      const n = await file.readInto(b, pos);
      pos += n;
      return n === 0 ? null : b.subarray(0, n);
    };
    const readable: Readable = new Readable({
      highWaterMark: chunk,
      read: () => {
        next().then((b) => readable.push(b), (e: unknown) => readable.destroy(e as Error));
      },
      destroy: (err, cb) => {
        const f = file;
        file = undefined;
        (f ? f.close() : Promise.resolve()).then(() => cb(err), () => cb(err));
      },
    });
    return readable;
  }

  /** Create or replace a file with `data` (a buffer or a stream of buffers). */
  async writeFile(clearPath: string, data: Uint8Array | AsyncIterable<Uint8Array>, mode = 0o644): Promise<void> {
    this.checkWritable();
    const lowerPath = this.lowerPath(clearPath);
    const exists = await this.lower.lstat(lowerPath).then(() => true, () => false);
    const f = exists ? await this.openLower(lowerPath, { write: true }) : await this.createFile(clearPath, mode);
    try {
      if (exists) await f.truncate(0);
      if (data instanceof Uint8Array) await f.write(0, data, this.keys, this.newFileParams());
      else {
        let pos = 0;
        for await (const b of data) {
          await f.write(pos, b, this.keys, this.newFileParams());
          pos += b.length;
        }
      }
    } finally {
      await f.close();
    }
  }

  /** Write `data` at clear offset `pos` of an existing file (past EOF: the gap reads as zeros). */
  async writeAt(clearPath: string, pos: number, data: Uint8Array): Promise<void> {
    const f = await this.openFile(clearPath, { write: true });
    try {
      await f.write(pos, data, this.keys, this.newFileParams());
    } finally {
      await f.close();
    }
  }

  async appendFile(clearPath: string, data: Uint8Array): Promise<void> {
    const f = await this.openFile(clearPath, { write: true });
    try {
      await f.write(f.size, data, this.keys, this.newFileParams());
    } finally {
      await f.close();
    }
  }

  async truncate(clearPath: string, size: number): Promise<void> {
    const f = await this.openFile(clearPath, { write: true });
    try {
      await f.truncate(size, this.keys, this.newFileParams());
    } finally {
      await f.close();
    }
  }

  async mkdir(clearPath: string, mode = 0o755): Promise<void> {
    this.checkWritable();
    await this.lower.mkdir(this.lowerPath(clearPath), mode);
  }

  async rmdir(clearPath: string): Promise<void> {
    this.checkWritable();
    await this.lower.rmdir(await this.resolve(clearPath));
  }

  async unlink(clearPath: string): Promise<void> {
    this.checkWritable();
    await this.lower.unlink(await this.resolve(clearPath));
  }

  async rename(from: string, to: string): Promise<void> {
    this.checkWritable();
    await this.lower.rename(await this.resolve(from), this.lowerPath(to));
  }

  async link(existing: string, newPath: string): Promise<void> {
    this.checkWritable();
    await this.lower.link(await this.resolve(existing), this.lowerPath(newPath));
  }

  /** Symlink target as stored below: encrypted like a name when filename encryption is on. */
  encodeLinkTarget(target: string): string {
    if (!this.filenameEncryption) return target;
    return this.nameCodec().encrypt(Buffer.from(target, 'utf8'), 4095);
  }

  /** Symlink target bytes → lower target bytes (the lossless form of encodeLinkTarget). */
  encodeLinkTargetBytes(target: Uint8Array): Buffer {
    if (!this.filenameEncryption) return Buffer.from(target);
    return Buffer.from(this.nameCodec().encrypt(target, 4095), 'latin1');
  }

  /** Lower target bytes → clear target bytes (a target may hold '/', but never NUL). */
  decodeLinkTargetBytes(lower: Uint8Array): Buffer {
    const text = Buffer.from(lower).toString('latin1');
    if (!this.filenameEncryption && !text.startsWith(FNEK_PREFIX)) return Buffer.from(lower);
    const t = this.decodeBytes(text);
    if (t.length === 0 || t.includes(0)) throw new EcryptfsError('EBADNAME', 'encrypted symlink target decodes to an empty target or one holding NUL', text);
    return t;
  }

  async symlink(target: string, clearPath: string): Promise<void> {
    this.checkWritable();
    await this.lower.symlink(this.encodeLinkTarget(target), this.lowerPath(clearPath));
  }

  async readlink(clearPath: string): Promise<string> {
    return this.readlinkLower(await this.resolve(clearPath));
  }

  async readlinkLower(lowerPath: LowerPath): Promise<string> {
    return (await this.readlinkLowerBytes(lowerPath)).toString('utf8');
  }

  /** The clear target's exact bytes. */
  async readlinkLowerBytes(lowerPath: LowerPath): Promise<Buffer> {
    return this.decodeLinkTargetBytes(await this.lower.readlinkBytes(lowerPath));
  }

  /** Forget every key (zeroed). The volume cannot be used afterwards. */
  close(): void {
    this.nameEncryptor?.destroy();
    this.nameEncryptor = undefined;
    this.keys.destroy();
  }
}

/** The lower directory could not be opened (or stat'ed): the error users get, naming it. */
export function cannotOpenLower(e: unknown, root: string): EcryptfsError {
  const err = e as NodeJS.ErrnoException;
  return new EcryptfsError('EIO', `cannot open the lower directory: ${err.code ?? err.message}`, root);
}

/**
 * Find the FNEK sig, cipher and key size from the first encrypted name in the lower root that a
 * key we hold decrypts (Tag 70 names the sig and cipher; the key size is found by trying the
 * cipher's sizes, since the deterministic name prefix tells a right key from a wrong one).
 */
async function detectFnek(lower: LowerFs, keys: KeyRing): Promise<{ sig: string; cipher: CipherName; keyBytes: number } | undefined> {
  const names = await lower.readdir('');
  for (const n of names) {
    if (!n.startsWith(FNEK_PREFIX)) continue;
    try {
      const p = parseEncryptedFilename(n);
      const k = keys.get(p.sig);
      if (!k) continue;
      const info = cipherFromCode(p.cipherCode);
      for (const size of info.keyBytes !== undefined ? [info.keyBytes] : CIPHERS[info.name].keySizes) {
        try {
          decryptFilename(p, k, info.name, size);
          return { sig: p.sig, cipher: info.name, keyBytes: size };
        } catch {
          // try the next size
        }
      }
    } catch {
      // not decodable: look further
    }
  }
  return undefined;
}
