/**
 * Command-line arguments as the bytes they are. Node decodes argv as UTF-8, which changes a
 * Latin-1 file name (caf\xe9 becomes caf\ufffd); /proc/self/cmdline holds the raw bytes, and the
 * last arguments there are the script's.
 */
import { readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { NodeLowerFs, resolveBytes, type LowerFs } from '../lower/lowerfs.js';

let cache: Map<string, Buffer> | undefined;

/** Each argument whose bytes UTF-8 changed, by the string Node gave for it. */
function changed(): Map<string, Buffer> {
  if (cache) return cache;
  cache = new Map();
  const count = process.argv.length - 2;
  let raw: Buffer;
  try {
    raw = readFileSync('/proc/self/cmdline');
  } catch {
    return cache;
  }
  const parts: Buffer[] = [];
  for (let s = 0, i = raw.indexOf(0); i >= 0; s = i + 1, i = raw.indexOf(0, s)) parts.push(raw.subarray(s, i));
  if (count <= 0 || parts.length < count) return cache;
  const mine = parts.slice(parts.length - count);
  const ambiguous = new Set<string>();
  mine.forEach((b, k) => {
    const s = process.argv[2 + k];
    if (Buffer.from(s).equals(b)) return;
    if (cache!.has(s) && !cache!.get(s)!.equals(b)) ambiguous.add(s);
    cache!.set(s, Buffer.from(b));
  });
  for (const s of ambiguous) cache.delete(s);
  return cache;
}

/** The exact bytes of an argument Node gave as `s` (a string when UTF-8 kept it whole). */
export function rawArg(s: string): string | Buffer {
  return changed().get(s) ?? s;
}

/** All the script's arguments, each as rawArg gives it. */
export function rawArgs(): Array<string | Buffer> {
  return process.argv.slice(2).map(rawArg);
}

/**
 * path's dirname and basename on a path that may be bytes: each byte is one Latin-1
 * character while they work, so '/' is found and no other byte changes.
 */
function onBytes(p: string | Buffer, fn: (s: string) => string): string | Buffer {
  return typeof p === 'string' ? fn(p) : Buffer.from(fn(p.toString('latin1')), 'latin1');
}
export const dirnameOf = (p: string | Buffer) => onBytes(p, dirname);
export const basenameOf = (p: string | Buffer) => onBytes(p, basename);
export const resolveArg = resolveBytes;

/** A lower directory: its path, or a LowerFs on its exact bytes (Volume.open takes either). */
export const lowerAt = (p: string | Buffer): string | LowerFs => (typeof p === 'string' ? p : new NodeLowerFs(p));

/** A lower directory named on the command line (LOWERDIR of ls and fsck). */
export const lowerDirArg = (arg: string) => lowerAt(rawArg(arg));
