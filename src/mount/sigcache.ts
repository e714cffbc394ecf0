/**
 * ~/.ecryptfs/sig-cache.txt: the sigs a user has mounted with before, 16 hex digits and a
 * newline each (mount.ecryptfs reads it in 17-byte records).
 */
import { promises as fsp } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

export function sigCachePath(home = homedir()): string {
  return join(home, '.ecryptfs', 'sig-cache.txt');
}

/** Sigs in a sig-cache file's text; malformed records are skipped. */
export function parseSigCache(text: string): Set<string> {
  const out = new Set<string>();
  for (let i = 0; i + 16 <= text.length; i += 17) {
    const s = text.slice(i, i + 16);
    if (/^[0-9a-f]{16}$/.test(s)) out.add(s);
  }
  return out;
}

export async function sigInCache(sig: string, path = sigCachePath()): Promise<boolean> {
  const text = await fsp.readFile(path, 'latin1').catch(() => '');
  return parseSigCache(text).has(sig);
}

export async function appendSigToCache(sig: string, path = sigCachePath()): Promise<void> {
  await fsp.mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await fsp.appendFile(path, `${sig}\n`, { mode: 0o600 });
}
