/** Iterated SHA-512 (the key derivation's core): the OpenSSL path equals node:crypto round by round. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sha512Backend, sha512Rounds } from '../../src/crypto/sha512.js';

function reference(h: Buffer, n: number): Buffer {
  for (let i = 0; i < n; i++) h = createHash('sha512').update(h).digest();
  return h;
}

test('sha512Rounds equals n rounds of node:crypto, and leaves its input as it was', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.integer({ min: 0, max: 300 }), (bytes, n) => {
      const h = Buffer.from(bytes);
      const before = Buffer.from(h);
      assert.deepEqual(sha512Rounds(h, n), reference(Buffer.from(h), n));
      assert.deepEqual(h, before);
    }),
    { numRuns: 200 },
  );
});

test('sha512Rounds refuses what is not a 64-byte digest', () => {
  assert.throws(() => sha512Rounds(Buffer.alloc(63), 1), RangeError);
});

test('the key derivation takes the OpenSSL path here (EVP_Digest with SHA-512 fetched once), node:crypto with ECRYPTFS_FFI_CRYPTO=0', () => {
  // A silent fall back to node:crypto would double every mount's derivation (see sha512.ts).
  assert.equal(sha512Backend(), 'openssl');
  const mod = fileURLToPath(new URL('../../src/crypto/sha512.js', import.meta.url));
  const script = `const m = await import(${JSON.stringify(mod)}); process.stdout.write(m.sha512Backend());`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, ECRYPTFS_FFI_CRYPTO: '0' } });
  assert.equal(r.stdout, 'node:crypto', r.stderr);
});
