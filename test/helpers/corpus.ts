/**
 * Read-only access to the kernel-made corpus copies under test/fixtures/corpus, for pure format
 * tests: manifests and raw files, nothing unpacked, no imports from src/.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** test/fixtures/corpus, found from the compiled file (dist/test/helpers) or the source. */
export const CORPUS_DIR: string = (() => {
  const candidates = [fileURLToPath(new URL('../fixtures/corpus', import.meta.url)), fileURLToPath(new URL('../../../test/fixtures/corpus', import.meta.url))];
  const found = candidates.find((p) => existsSync(join(p, 'userspace-keys')));
  if (!found) throw new Error(`corpus fixtures not found (looked in ${candidates.join(', ')})`);
  return found;
})();

export interface CorpusFile {
  path: string;
  type: 'file' | 'dir' | 'symlink';
  lower?: string;
  symlink_target?: string | null;
  lower_symlink_target?: string | null;
  [k: string]: unknown;
}

export interface CorpusManifest {
  case: string;
  passphrase: string | null;
  fnek_passphrase?: string | null;
  cipher: string | null;
  key_bytes: number | null;
  filename_encryption: boolean | null;
  fn_cipher?: string | null;
  fn_key_bytes?: number | null;
  sigs: { ecryptfs_sig: string; ecryptfs_fnek_sig: string | null } | null;
  files?: CorpusFile[];
  lower_listing?: Array<{ type: string; path: string; symlink_target: string | null }>;
  [k: string]: unknown;
}

/** Names of the corpus cases (directories with a manifest.json). */
export function corpusCaseNames(): string[] {
  return readdirSync(CORPUS_DIR)
    .filter((c) => existsSync(join(CORPUS_DIR, c, 'manifest.json')))
    .sort();
}

export function corpusManifest(caseName: string): CorpusManifest {
  return JSON.parse(readFileSync(join(CORPUS_DIR, caseName, 'manifest.json'), 'utf8')) as CorpusManifest;
}

/** Raw bytes of a file inside a case directory (path relative to the case). */
export function corpusFile(caseName: string, relPath: string): Buffer {
  return readFileSync(join(CORPUS_DIR, caseName, relPath));
}
