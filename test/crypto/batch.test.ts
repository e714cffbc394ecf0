/**
 * The fast batch paths against the simple ones, on random data, for every cipher: batched IVs
 * against node:crypto MD5, packed IVs and long batches (crossing the decrypt slices) against one
 * extent per call (the crypto pool's parallel paths: test/volume/filecrypto.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import fc from 'fast-check';
import { blockSizeOf, createBlockCipher, hasLegacyProvider } from '../../src/crypto/blockcipher.js';
import { extentIvsInto } from '../../src/crypto/extentiv.js';
import { evpAvailable, setMaxEvpRun } from '../../src/crypto/evp.js';
import type { CipherName } from '../../src/crypto/types.js';
import { extentIv } from '../../src/format/contentenc.js';
import { seededBytes } from '../helpers/prng.js';


test('the direct EVP path serves AES and 3DES where koffi and the OpenSSL symbols are there', { skip: process.env.ECRYPTFS_FFI_CRYPTO === '0' ? 'turned off' : false }, () => {
  // Node carries OpenSSL and exports its symbols on every platform this project supports.
  assert.equal(evpAvailable(), true);
  for (const name of ['aes', 'des3_ede'] as const) {
    const c = createBlockCipher(name, bytes(3, KEY[name])) as unknown as { direct: boolean };
    assert.equal(c.direct, true, name);
  }
});

const bytes = seededBytes;

const KEY: Record<CipherName, number> = { aes: 16, des3_ede: 24, blowfish: 16, cast5: 16, twofish: 32, cast6: 24 };
const OPENSSL_CBC: Partial<Record<CipherName, string>> = { aes: 'aes-128-cbc', des3_ede: 'des-ede3-cbc', blowfish: 'bf-cbc', cast5: 'cast5-cbc' };
const ALL = Object.keys(KEY) as CipherName[];
/** Ciphers slow enough (pure TypeScript, or 3DES) to get fewer and smaller cases. */
const slow = (n: CipherName) => !OPENSSL_CBC[n] || n === 'des3_ede';
const legacy = (n: CipherName) => (n === 'blowfish' || n === 'cast5') && !hasLegacyProvider();

test('extentIvsInto equals MD5(root || decimal index, zero-padded) for random roots and index runs', () => {
  fc.assert(fc.property(
    fc.uint8Array({ minLength: 16, maxLength: 16 }),
    fc.oneof(fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - 64 })),
    fc.integer({ min: 1, max: 40 }),
    (root, first, count) => {
      const out = Buffer.alloc(16 * count + 3);
      extentIvsInto(root, first, count, out, 3);
      for (let i = 0; i < count; i++) {
        const src = Buffer.alloc(32);
        src.set(root);
        src.write(String(first + i), 16, 'latin1');
        assert.deepEqual(out.subarray(3 + 16 * i, 19 + 16 * i), createHash('md5').update(src).digest(), `extent ${first + i}`);
      }
    },
  ), { numRuns: 300 });
  // Digit-count edges.
  const root = bytes(5, 16);
  for (const n of [0, 9, 10, 99, 100, 999_999_999, 1_000_000_000, 2 ** 32 - 1, 2 ** 32, 10 ** 15 - 1, 10 ** 15, Number.MAX_SAFE_INTEGER - 46, Number.MAX_SAFE_INTEGER]) {
    const src = Buffer.alloc(32);
    root.copy(src);
    src.write(String(n), 16, 'latin1');
    assert.deepEqual(extentIv(root, n), createHash('md5').update(src).digest(), `extent ${n}`);
  }
  assert.throws(() => extentIvsInto(root, -1, 1, Buffer.alloc(16)), RangeError);
  assert.throws(() => extentIvsInto(root, 0, 2, Buffer.alloc(16)), RangeError);
});

for (const name of ALL) {
  test(`${name}: packed IVs and long batches equal one extent per call`, { skip: legacy(name) ? 'no legacy provider' : false }, () => {
    const bs = blockSizeOf(name);
    const js = slow(name);
    fc.assert(fc.property(
      fc.integer(),
      // Extent sizes around the 64 KiB decrypt slice: many extents per slice, a few, one.
      fc.constantFrom(4096, 16 * bs, 24576, 65536, 65536 + bs * 3),
      fc.integer({ min: 1, max: js ? 6 : 40 }),
      (seed, extentSize, count) => {
        const key = bytes(seed, KEY[name]);
        const data = bytes(seed + 1, count * extentSize);
        const packed = bytes(seed + 2, 16 * count);
        const list = Array.from({ length: count }, (_, i) => packed.subarray(16 * i, 16 * i + 16));
        const c = createBlockCipher(name, key);
        const ct = Buffer.alloc(data.length);
        c.cbcEncryptExtents(data, ct, extentSize, packed);
        const one = Buffer.alloc(data.length);
        for (let e = 0; e < count; e++) {
          const r = [e * extentSize, (e + 1) * extentSize] as const;
          c.cbcEncryptExtents(data.subarray(...r), one.subarray(...r), extentSize, [list[e]]);
        }
        assert.deepEqual(ct, one, 'batch encrypt equals one extent per call');
        if (name === 'aes' || name === 'des3_ede') {
          // The direct EVP path (when this process has it) against node:crypto's Cipher objects.
          const viaNode = createBlockCipher(name, key, { evp: false });
          const other = Buffer.alloc(data.length);
          viaNode.cbcEncryptExtents(data, other, extentSize, list);
          assert.deepEqual(other, ct, 'EVP and node:crypto encrypt alike');
          viaNode.cbcDecryptExtents(ct, other, extentSize, packed);
          assert.deepEqual(other, data, 'EVP and node:crypto decrypt alike');
        }
        if (OPENSSL_CBC[name]) {
          // And a fresh node:crypto context per extent, for the OpenSSL ciphers.
          const e = Math.floor(count / 2);
          const cc = createCipheriv(OPENSSL_CBC[name]!, key, list[e].subarray(0, bs)).setAutoPadding(false);
          assert.deepEqual(ct.subarray(e * extentSize, (e + 1) * extentSize), cc.update(data.subarray(e * extentSize, (e + 1) * extentSize)));
          const dc = createDecipheriv(OPENSSL_CBC[name]!, key, list[e].subarray(0, bs)).setAutoPadding(false);
          assert.deepEqual(dc.update(ct.subarray(e * extentSize, (e + 1) * extentSize)), data.subarray(e * extentSize, (e + 1) * extentSize));
        }
        const pt = Buffer.alloc(data.length);
        c.cbcDecryptExtents(ct, pt, extentSize, packed);
        assert.deepEqual(pt, data, 'batch decrypt');
        const inPlace = Buffer.from(ct);
        c.cbcDecryptExtents(inPlace, inPlace, extentSize, list);
        assert.deepEqual(inPlace, data, 'in-place decrypt with an IV list');
      },
    ), { numRuns: js ? 15 : 60 });
  });
}


test('one extent decrypted in a longer buffer (the mount\'s read scratch) changes that extent only', () => {
  for (const name of ['aes', 'des3_ede'] as const) {
    const key = bytes(21, KEY[name]), data = bytes(22, 4096), ivs = bytes(23, 16);
    const ct = Buffer.alloc(4096);
    createBlockCipher(name, key).cbcEncryptExtents(data, ct, 4096, ivs);
    const scratch = Buffer.concat([ct, bytes(24, 3 * 4096)]);
    const tail = Buffer.from(scratch.subarray(4096));
    createBlockCipher(name, key).cbcDecryptExtents(scratch, scratch, 4096, ivs);
    assert.ok(scratch.subarray(0, 4096).equals(data), `${name} in place`);
    assert.ok(scratch.subarray(4096).equals(tail), `${name}: the rest of the buffer is left alone`);
    const out = bytes(25, 2 * 4096), after = Buffer.from(out.subarray(4096));
    createBlockCipher(name, key).cbcDecryptExtents(Buffer.concat([ct, tail]).subarray(0, 4096), out, 4096, ivs);
    assert.ok(out.subarray(0, 4096).equals(data) && out.subarray(4096).equals(after), `${name} into a longer dst`);
  }
});

test('runs longer than one EVP call decrypt in pieces, each restarting at its own IV', () => {
  setMaxEvpRun(3 * 4096 + 100);
  try {
    for (const name of ['aes', 'des3_ede'] as const) {
      const key = bytes(9, KEY[name]), data = bytes(10, 11 * 4096), ivs = bytes(11, 16 * 11);
      const a = Buffer.alloc(data.length), b = Buffer.alloc(data.length);
      createBlockCipher(name, key).cbcDecryptExtents(data, a, 4096, ivs);
      createBlockCipher(name, key, { evp: false }).cbcDecryptExtents(data, b, 4096, ivs);
      assert.ok(a.equals(b), name);
      const inPlace = Buffer.from(data);
      createBlockCipher(name, key).cbcDecryptExtents(inPlace, inPlace, 4096, ivs);
      assert.ok(inPlace.equals(b), `${name} in place`);
    }
  } finally {
    setMaxEvpRun(256 << 20);
  }
});

test('extent decryption at any byte offsets (word or byte fix-ups) equals node:crypto, in place and not', () => {
  fc.assert(fc.property(
    fc.integer(),
    fc.constantFrom('aes', 'des3_ede') as fc.Arbitrary<'aes' | 'des3_ede'>,
    fc.integer({ min: 0, max: 7 }),
    fc.integer({ min: 0, max: 7 }),
    fc.integer({ min: 1, max: 12 }),
    fc.boolean(),
    (seed, name, at, to, count, inPlace) => {
      const es = 4096, key = bytes(seed, KEY[name]);
      const ivBacking = bytes(seed + 1, 16 * count + 3), ivs = ivBacking.subarray(at % 4, at % 4 + 16 * count);
      const ct = bytes(seed + 2, count * es);
      const want = Buffer.alloc(ct.length);
      createBlockCipher(name, key, { evp: false }).cbcDecryptExtents(ct, want, es, Buffer.from(ivs));
      const src = Buffer.alloc(ct.length + at).subarray(at);
      src.set(ct);
      const dst = inPlace ? src : Buffer.alloc(ct.length + to).subarray(to);
      createBlockCipher(name, key).cbcDecryptExtents(src, dst, es, ivs);
      assert.ok(dst.equals(want));
    },
  ), { numRuns: 80 });
});
