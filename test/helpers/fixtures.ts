/** Test helpers: corpus cases (kernel-made lower dirs) unpacked into temporary directories. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setXattr } from '../../src/lower/xattr.js';

/** test/fixtures, found from the compiled file in dist/test/helpers or the source. */
export const FIXTURES = [fileURLToPath(new URL('../fixtures', import.meta.url)), fileURLToPath(new URL('../../../test/fixtures', import.meta.url))].find((p) =>
  existsSync(join(p, 'corpus')),
)!;

export interface ManifestFile {
  path: string;
  type: 'file' | 'dir' | 'symlink';
  mode?: string;
  size?: number;
  sha256?: string;
  symlink_target?: string;
  lower?: string;
  lower_size?: number;
  lower_symlink_target?: string;
  content?: unknown;
}

export interface Manifest {
  case: string;
  passphrase: string;
  cipher: string;
  key_bytes: number;
  filename_encryption: boolean;
  sigs: { ecryptfs_sig: string; ecryptfs_fnek_sig: string | null };
  files: ManifestFile[];
  [k: string]: unknown;
}

export function corpusCases(): string[] {
  return readdirSync(join(FIXTURES, 'corpus')).filter((c) => existsSync(join(FIXTURES, 'corpus', c, 'lower.tar')));
}

export function manifest(caseName: string, root = 'corpus'): Manifest {
  return JSON.parse(readFileSync(join(FIXTURES, root, caseName, 'manifest.json'), 'utf8')) as Manifest;
}

export function tempDir(prefix = 'ecryptfs-ts-'): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** Unpack a case's lower.tar (and its xattrs from lower-xattrs/) into a fresh directory. */
export async function unpackLower(caseName: string, root = 'corpus'): Promise<{ path: string; cleanup(): void }> {
  const dir = tempDir(`ecryptfs-${caseName}-`);
  execFileSync('tar', ['-xf', join(FIXTURES, root, caseName, 'lower.tar'), '-C', dir.path]);
  const xdir = join(FIXTURES, root, caseName, 'lower-xattrs');
  if (existsSync(xdir)) {
    for (const f of readdirSync(xdir)) {
      const m = /^(.*)\.(user\.[^.]+)$/.exec(f);
      if (!m) continue;
      await setXattr(join(dir.path, m[1]), m[2], readFileSync(join(xdir, f)));
    }
  }
  return dir;
}
