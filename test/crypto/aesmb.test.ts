/**
 * Multi-buffer AES-CBC encryption (src/crypto/aesmb.ts) against node:crypto with a fresh context
 * per extent, for random keys of every AES size, IVs, extent sizes and counts (idle lanes in the
 * last call), byte offsets (no alignment), in place and into another buffer; and the volume's
 * batched extent encryption (which takes it) against the per-extent reference.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { AesMultiCbc, aesMultiAvailable } from '../../src/crypto/aesmb.js';
import { createBlockCipher } from '../../src/crypto/blockcipher.js';
import { ContentCipher, extentIv } from '../../src/format/contentenc.js';
import { seededBytes as bytes } from '../helpers/prng.js';

const aesni = process.arch === 'x64' && process.platform === 'linux' && /^flags\s*:.*\baes\b/m.test(readFileSync('/proc/cpuinfo', 'latin1'));
const off = process.env.ECRYPTFS_FFI_CRYPTO === '0' || process.env.ECRYPTFS_AES_MB === '0';
const skip = !aesni ? 'no AES-NI on this machine' : off ? 'turned off' : false;

/** Extent e of src encrypted alone, as the kernel does it. */
function reference(key: Uint8Array, src: Uint8Array, extentSize: number, ivs: Uint8Array, e: number): Buffer {
  return createCipheriv(`aes-${key.length * 8}-cbc`, key, ivs.subarray(16 * e, 16 * e + 16)).setAutoPadding(false)
    .update(src.subarray(e * extentSize, (e + 1) * extentSize));
}

test('multi-buffer AES-CBC serves x86-64 with AES-NI (Node carries the OpenSSL symbols)', { skip }, () => {
  assert.equal(aesMultiAvailable(), true);
});

test('multi-buffer AES-CBC equals one node:crypto context per extent: random keys, IVs, sizes, counts, offsets', { skip }, () => {
  fc.assert(fc.property(
    fc.integer(),
    fc.constantFrom(16, 24, 32),
    fc.constantFrom(16, 48, 512, 4096, 8192),
    fc.integer({ min: 1, max: 35 }),
    fc.integer({ min: 0, max: 15 }),
    fc.boolean(),
    (seed, keyLen, extentSize, count, at, inPlace) => {
      if (!AesMultiCbc.fits(extentSize, count)) return;
      const key = bytes(seed, keyLen), ivs = bytes(seed + 1, 16 * count);
      // Views at an odd offset into a larger buffer: the addresses handed over must be the views'.
      const backing = bytes(seed + 2, at + count * extentSize + 16);
      const src = backing.subarray(at, at + count * extentSize);
      const plain = Buffer.from(src);
      const outBacking = Buffer.alloc(backing.length, 0xa5);
      const dst = inPlace ? src : outBacking.subarray(at, at + count * extentSize);
      const c = AesMultiCbc.create(key)!;
      c.encryptExtents(src, dst, extentSize, ivs, count);
      c.destroy();
      for (let e = 0; e < count; e++) assert.deepEqual(dst.subarray(e * extentSize, (e + 1) * extentSize), reference(key, plain, extentSize, ivs, e), `extent ${e}`);
      // Nothing outside the run is touched.
      const outside = inPlace ? backing : outBacking;
      const before = inPlace ? bytes(seed + 2, backing.length) : Buffer.alloc(backing.length, 0xa5);
      assert.deepEqual(outside.subarray(0, at), before.subarray(0, at));
      assert.deepEqual(outside.subarray(at + count * extentSize), before.subarray(at + count * extentSize));
      if (!inPlace) assert.deepEqual(src, plain, 'src unchanged');
    },
  ), { numRuns: 200 });
});

test('a file\'s batched extent encryption equals the per-extent reference (first extent anywhere, up to 70 extents)', () => {
  fc.assert(fc.property(
    fc.integer(),
    fc.constantFrom(16, 24, 32),
    fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.integer({ min: 0, max: 2 ** 40 })),
    fc.integer({ min: 1, max: 70 }),
    (seed, keyLen, first, count) => {
      const fek = bytes(seed, keyLen), es = 4096;
      const data = bytes(seed + 1, count * es);
      const cc = new ContentCipher('aes', fek);
      const ct = Buffer.alloc(data.length);
      cc.encrypt(data, ct, first, count);
      for (let e = 0; e < count; e++) {
        const iv = extentIv(cc.root, first + e);
        assert.deepEqual(ct.subarray(e * es, (e + 1) * es), reference(fek, data.subarray(e * es), es, iv, 0), `extent ${first + e}`);
      }
      const back = Buffer.from(ct);
      cc.decrypt(back, back, first, count);
      assert.deepEqual(back, data);
      cc.destroy();
    },
  ), { numRuns: 60 });
});

test('a destroyed schedule refuses work; bad runs are refused before any native call', { skip }, () => {
  const c = AesMultiCbc.create(bytes(1, 16))!;
  const buf = Buffer.alloc(8192), ivs = Buffer.alloc(32);
  assert.throws(() => c.encryptExtents(buf, buf, 4096, ivs, 3), RangeError, 'more extents than the buffer holds');
  assert.throws(() => c.encryptExtents(buf, Buffer.alloc(4096), 4096, ivs, 2), RangeError, 'short dst');
  assert.throws(() => c.encryptExtents(buf, buf, 4096, Buffer.alloc(16), 2), RangeError, 'short IVs');
  assert.throws(() => c.encryptExtents(buf, buf, 4100, ivs, 1), RangeError, 'not whole blocks');
  c.destroy();
  assert.throws(() => c.encryptExtents(buf, buf, 4096, ivs, 2), /destroyed/);
  // The OpenSSL cipher object takes it for several AES extents.
  assert.ok(createBlockCipher('aes', bytes(2, 32)));
});

test('without AVX (OpenSSL then runs two groups of 4 lanes, not 8) the results are the same', { skip: skip || (process.env.OPENSSL_ia32cap ? 'this is that run' : false) }, () => {
  // OPENSSL_ia32cap masks CPU features from OpenSSL: bit 60 is AVX (measured: 1 MiB 123 -> 177 us).
  // A run of its own (not a child of this test runner: NODE_TEST_CONTEXT would send its report elsewhere).
  const env: NodeJS.ProcessEnv = { ...process.env, OPENSSL_ia32cap: '~0x1000000000000000' };
  delete env.NODE_TEST_CONTEXT;
  const r = spawnSync(process.execPath, ['--test', fileURLToPath(import.meta.url)], { env, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /# pass [1-9]/);
});
