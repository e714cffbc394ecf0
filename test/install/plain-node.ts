/**
 * Run with a plain `node` (no --openssl-legacy-provider), as a library user would:
 *   node dist/test/install/plain-node.js [PACKAGE_DIR]
 * imports the built library (the checkout's, or an installed package's) and decrypts the
 * kernel-made Blowfish and CAST5 corpus cases, which OpenSSL 3 serves only from its legacy
 * provider: the library's own TypeScript ciphers must take over. Prints one line per case;
 * exits 1 on any difference.
 */
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CORPUS_DIR, corpusManifest } from '../helpers/corpus.js';

export const LEGACY_CASES = ['blowfish-128', 'blowfish-448', 'cast5-128'];

type Lib = typeof import('../../src/index.js');

function legacyProviderLoaded(): boolean {
  try {
    createCipheriv('bf-cbc', Buffer.alloc(16), Buffer.alloc(8));
    return true;
  } catch {
    return false;
  }
}

async function main(): Promise<number> {
  const pkg = resolve(process.argv[2] ?? new URL('../../..', import.meta.url).pathname);
  if (legacyProviderLoaded()) {
    process.stderr.write('OpenSSL\'s legacy provider is loaded: run this with a plain `node`, without --openssl-legacy-provider\n');
    return 2;
  }
  const lib = (await import(pathToFileURL(join(pkg, 'dist', 'src', 'index.js')).href)) as Lib;
  let bad = 0;
  for (const c of LEGACY_CASES) {
    const m = corpusManifest(c);
    const dir = mkdtempSync(join(tmpdir(), `ecryptfs-plain-${c}-`));
    try {
      execFileSync('tar', ['-xf', join(CORPUS_DIR, c, 'lower.tar'), '-C', dir]);
      const ring = new lib.KeyRing();
      await ring.addPassphrase(m.passphrase!);
      const vol = await lib.Volume.open(dir, ring, { readOnly: true });
      let files = 0;
      try {
        for (const f of m.files ?? []) {
          if (f.type !== 'file' || typeof f.sha256 !== 'string') continue;
          const got = createHash('sha256').update(await vol.readFile(f.path)).digest('hex');
          if (got !== f.sha256) {
            process.stderr.write(`${c}: ${f.path} decrypts to different contents\n`);
            bad++;
          }
          files++;
        }
      } finally {
        vol.close();
      }
      process.stdout.write(`${c} (${m.cipher} ${m.key_bytes}): ${files} files decrypted\n`);
      if (files === 0) bad++;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  return bad === 0 ? 0 : 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => (process.exitCode = code),
    (e: unknown) => {
      process.stderr.write(`${(e as Error).stack ?? e}\n`);
      process.exitCode = 1;
    },
  );
}
