/**
 * Check a lower directory: every file's header, key and length, every name's encoding.
 * Read-only; reports one verdict per entry and a summary.
 */
import { isEcryptfsError } from '../errors.js';
import { hasMarker, HEADER_PARSE_BYTES, parseHeader, type FileHeader } from '../format/header.js';
import { lowerSizeFor } from '../format/offsets.js';
import { XATTR_NAME } from './file.js';
import { devMajorMinor } from '../lower/mknod.js';
import { escapeName, isUtf8 } from './names.js';
import { typeOf, type EntryType, type Volume } from './volume.js';

export type Verdict = 'ok' | 'not-ecryptfs' | 'other-key' | 'damaged' | 'bad-name';

export interface FsckEntry {
  /** Lower path relative to the lower root, as text (bytes that are not UTF-8 escaped as \xHH). */
  lowerPath: string;
  lowerPathBytes: Buffer;
  /** Clear path when the name decodes, as text (escaped like lowerPath). */
  clearPath?: string;
  clearPathBytes?: Buffer;
  type: EntryType;
  verdict: Verdict;
  detail: string;
}

export interface FsckReport {
  entries: FsckEntry[];
  counts: Record<Verdict, number>;
}

async function checkFile(vol: Volume, lowerPath: Buffer): Promise<{ verdict: Verdict; detail: string }> {
  const f = await vol.lower.open(lowerPath, 'r');
  let header: FileHeader;
  let lowerLen: number;
  let inXattr = false;
  try {
    lowerLen = (await f.stat()).size;
    const head = Buffer.alloc(HEADER_PARSE_BYTES);
    const n = await f.read(head, 0, head.length, 0);
    try {
      if (n >= 16 && hasMarker(head)) header = parseHeader(head.subarray(0, n), 'file');
      else {
        const x = await vol.lower.getxattr(lowerPath, XATTR_NAME).catch(() => undefined);
        if (!x || !hasMarker(x)) {
          return lowerLen === 0
            ? { verdict: 'ok', detail: 'empty lower file (becomes an eCryptfs file on first write)' }
            : { verdict: 'not-ecryptfs', detail: 'no eCryptfs header in the file or its user.ecryptfs xattr' };
        }
        header = parseHeader(x, 'xattr');
        inXattr = true;
      }
    } catch (e) {
      if (isEcryptfsError(e)) return { verdict: 'damaged', detail: e.message };
      throw e;
    }
  } finally {
    await f.close();
  }
  const known = header.keys.find((k) => vol.keys.has(k.sig));
  if (!known) {
    const sigs = [...header.keys.map((k) => k.sig), ...header.publicKeySigs];
    return { verdict: 'other-key', detail: `encrypted with another key: sig ${sigs.join(', ')}` };
  }
  const need = lowerSizeFor(header.size, inXattr ? 0 : header.metadataSize, header.extentSize);
  if (lowerLen < need) {
    return { verdict: 'damaged', detail: `truncated: size field says ${header.size} bytes, which needs ${need} lower bytes, but the lower file has ${lowerLen}` };
  }
  try {
    const file = await vol.openLower(lowerPath);
    await file.close();
  } catch (e) {
    if (isEcryptfsError(e)) return { verdict: 'damaged', detail: e.message };
    throw e;
  }
  return { verdict: 'ok', detail: `size ${header.size}, sig ${known.sig}${inXattr ? ', header in xattr' : ''}` };
}

export async function fsck(vol: Volume, onEntry?: (e: FsckEntry) => void): Promise<FsckReport> {
  const entries: FsckEntry[] = [];
  const counts: Record<Verdict, number> = { ok: 0, 'not-ecryptfs': 0, 'other-key': 0, damaged: 0, 'bad-name': 0 };
  const push = (e: FsckEntry) => {
    entries.push(e);
    counts[e.verdict]++;
    onEntry?.(e);
  };
  const join = (dir: Buffer | undefined, n: Buffer) => (dir === undefined ? undefined : dir.length === 0 ? n : Buffer.concat([dir, SLASH, n]));
  const walk = async (lowerDir: Buffer, clearDir: Buffer | undefined): Promise<void> => {
    for (const name of (await vol.lower.readdirBytes(lowerDir)).sort(Buffer.compare)) {
      const lowerPathBytes = join(lowerDir, name)!;
      const lowerPath = escapeName(lowerPathBytes);
      const st = await vol.lower.lstat(lowerPathBytes);
      const type = typeOf(st);
      let clearName: Buffer | undefined;
      let nameProblem: string | undefined;
      try {
        clearName = vol.decodeNameBytes(name);
      } catch (e) {
        nameProblem = isEcryptfsError(e) ? e.message : String(e);
      }
      const clearPathBytes = clearName === undefined ? undefined : join(clearDir, clearName);
      const at = { lowerPath, lowerPathBytes, clearPath: clearPathBytes && escapeName(clearPathBytes), clearPathBytes, type };
      // A name that is not UTF-8 is a valid Linux name: kept exactly, and said so.
      const note = clearName && !isUtf8(clearName) ? ' (name is not UTF-8: shown with \\xHH escapes)' : '';
      if (nameProblem) push({ lowerPath, lowerPathBytes, type, verdict: 'bad-name', detail: `name does not decode to a file name: ${nameProblem}` });
      if (type === 'dir') {
        if (!nameProblem) push({ ...at, verdict: 'ok', detail: `directory${note}` });
        await walk(lowerPathBytes, clearPathBytes);
      } else if (type === 'file') {
        const r = await checkFile(vol, lowerPathBytes).catch((e: Error) => ({ verdict: 'damaged' as Verdict, detail: e.message }));
        if (nameProblem && r.verdict === 'ok') continue;
        push({ ...at, ...r, detail: `${r.detail}${note}` });
      } else if (type === 'symlink') {
        try {
          const t = await vol.readlinkLowerBytes(lowerPathBytes);
          if (!nameProblem) push({ ...at, verdict: 'ok', detail: `-> ${escapeName(t)}${note}` });
        } catch (e) {
          push({ ...at, verdict: 'bad-name', detail: `symlink target does not decode: ${(e as Error).message}` });
        }
      } else if (!nameProblem) {
        const dev = type === 'char-device' || type === 'block-device' ? ` ${devMajorMinor(st.rdev).join(':')}` : '';
        push({ ...at, verdict: 'ok', detail: `${type}${dev}${note}` });
      }
    }
  };
  await walk(Buffer.alloc(0), Buffer.alloc(0));
  return { entries, counts };
}

const SLASH = Buffer.from('/');

export function fsckFailed(r: FsckReport): boolean {
  return r.counts['not-ecryptfs'] + r.counts['other-key'] + r.counts.damaged + r.counts['bad-name'] > 0;
}

