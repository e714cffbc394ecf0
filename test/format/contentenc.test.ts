/** Extent IVs and the short MD5 behind them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { md5Short } from '../../src/format/md5.js';
import { ContentCipher, extentIv, rootIv } from '../../src/format/contentenc.js';

test('md5Short equals node:crypto MD5 for every length 0..55', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 55 }), (m) => {
      const out = Buffer.alloc(16);
      md5Short(m, out);
      assert.deepEqual(out, createHash('md5').update(m).digest());
    }),
    { numRuns: 2000 },
  );
});

test('extent IV = MD5(root IV || decimal index zero-padded to 16 bytes)', () => {
  const fek = randomBytes(16);
  const root = rootIv(fek);
  assert.deepEqual(root, createHash('md5').update(fek).digest());
  for (const n of [0, 1, 9, 10, 12, 255, 4096, 123456789012345]) {
    const src = Buffer.alloc(32);
    root.copy(src);
    src.write(String(n), 16, 'latin1');
    assert.deepEqual(extentIv(root, n), createHash('md5').update(src).digest(), `extent ${n}`);
  }
});

test('ContentCipher batches equal extent-by-extent crypto', () => {
  const fek = randomBytes(16);
  const c = new ContentCipher('aes', fek);
  const plain = randomBytes(4096 * 5);
  const enc = Buffer.alloc(plain.length);
  c.encrypt(plain, enc, 7, 5);
  for (let i = 0; i < 5; i++) {
    const one = Buffer.alloc(4096);
    c.encrypt(plain.subarray(i * 4096, (i + 1) * 4096), one, 7 + i, 1);
    assert.deepEqual(one, enc.subarray(i * 4096, (i + 1) * 4096));
  }
  const dec = Buffer.from(enc);
  c.decrypt(dec, dec, 7, 5);
  assert.deepEqual(dec, plain);
});
