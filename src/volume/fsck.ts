/**
 * Check a lower directory: every file's header, key and length, every name's encoding.
 * Read-only; reports one verdict per entry and a summary.
 */
import { isEcryptfsError } from '../errors.js';
import { hasMarker, HEADER_PARSE_BYTES, parseHeader, type FileHeader } from '../format/header.js';
import { lowerSizeFor } from '../format/offsets.js';
import { XATTR_NAME } from './file.js';
import type { Volume } from './volume.js';

export type Verdict = 'ok' | 'not-ecryptfs' | 'other-key' | 'damaged' | 'bad-name';

export interface FsckEntry {
  /** Lower path relative to the lower root. */
  lowerPath: string;
  /** Clear path when the name decodes. */
  clearPath?: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  verdict: Verdict;
  detail: string;
}

export interface FsckReport {
  entries: FsckEntry[];
  counts: Record<Verdict, number>;
}

async function checkFile(vol: Volume, lowerPath: string): Promise<{ verdict: Verdict; detail: string }> {
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
  const walk = async (lowerDir: string, clearDir: string | undefined): Promise<void> => {
    for (const name of (await vol.lower.readdir(lowerDir)).sort()) {
      const lowerPath = lowerDir === '' ? name : `${lowerDir}/${name}`;
      const st = await vol.lower.lstat(lowerPath);
      const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
      let clearName: string | undefined;
      let nameProblem: string | undefined;
      try {
        clearName = vol.decodeName(name);
      } catch (e) {
        nameProblem = isEcryptfsError(e) ? e.message : String(e);
      }
      const clearPath = clearName === undefined || clearDir === undefined ? undefined : clearDir === '' ? clearName : `${clearDir}/${clearName}`;
      if (nameProblem) push({ lowerPath, type, verdict: 'bad-name', detail: `name does not decode: ${nameProblem}` });
      if (type === 'dir') {
        if (!nameProblem) push({ lowerPath, clearPath, type, verdict: 'ok', detail: 'directory' });
        await walk(lowerPath, clearPath);
      } else if (type === 'file') {
        const r = await checkFile(vol, lowerPath).catch((e: Error) => ({ verdict: 'damaged' as Verdict, detail: e.message }));
        push({ lowerPath, clearPath, type, ...r });
      } else if (type === 'symlink') {
        try {
          const t = await vol.readlinkLower(lowerPath);
          if (!nameProblem) push({ lowerPath, clearPath, type, verdict: 'ok', detail: `-> ${t}` });
        } catch (e) {
          push({ lowerPath, clearPath, type, verdict: 'bad-name', detail: `symlink target does not decode: ${(e as Error).message}` });
        }
      } else if (!nameProblem) push({ lowerPath, clearPath, type, verdict: 'ok', detail: 'special file' });
    }
  };
  await walk('', '');
  return { entries, counts };
}

export function fsckFailed(r: FsckReport): boolean {
  return r.counts['not-ecryptfs'] + r.counts['other-key'] + r.counts.damaged + r.counts['bad-name'] > 0;
}

