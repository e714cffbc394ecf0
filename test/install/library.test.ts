/**
 * The package as installed: what the bins need is shipped, their shebang passes
 * --openssl-legacy-provider, `ecryptfs --version` answers, and the library decrypts every
 * cipher in a plain `node` without that flag (the JS fallbacks).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LEGACY_CASES } from './plain-node.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string>; files: string[]; scripts: Record<string, string> };

test('a plain `node` (no --openssl-legacy-provider) imports the built library and decrypts the kernel-made blowfish and cast5 cases', () => {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const r = spawnSync(process.execPath, [fileURLToPath(new URL('./plain-node.js', import.meta.url)), ROOT], { encoding: 'utf8', env });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  for (const c of LEGACY_CASES) assert.match(r.stdout, new RegExp(`^${c} \\(\\w+ \\d+\\): [1-9]\\d* files decrypted$`, 'm'));
});

test('every bin: executable, the env -S shebang with the legacy provider, its import shipped in the package', () => {
  for (const [name, rel] of Object.entries(PKG.bin)) {
    const file = join(ROOT, rel);
    const text = readFileSync(file, 'utf8');
    assert.equal(text.split('\n')[0], '#!/usr/bin/env -S node --openssl-legacy-provider', `${name}'s shebang`);
    for (const m of text.matchAll(/from "\.\.\/(dist\/src\/[^"]+)"/g)) {
      assert.ok(existsSync(join(ROOT, m[1])), `${name} imports ${m[1]}, which the build made`);
      assert.ok(PKG.files.some((f) => m[1].startsWith(`${f}/`)), `${m[1]} is in package.json's files`);
    }
    assert.ok(PKG.files.includes('bin'), 'bin/ is shipped');
  }
  assert.match(PKG.scripts.prepare, /build-on-install/, 'dist/ is built by `prepare` (npm pack, npm install -g . from a clone)');
});

test('`ecryptfs --version` (the bin, through its shebang) prints package.json\'s version and exits 0', () => {
  for (const flag of ['--version', '-V']) {
    const r = spawnSync(join(ROOT, 'bin', 'ecryptfs.js'), [flag], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${PKG.version}\n`);
  }
});
