/**
 * Batched per-extent CBC: round trips, in-place operation, agreement with a fresh cipher per
 * extent (node:crypto directly for OpenSSL ciphers; CBC built by hand from ECB for all), and
 * pure-TypeScript Blowfish/CAST5 against OpenSSL's legacy ones.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv, createDecipheriv } from 'node:crypto';
import fc from 'fast-check';
import { blockSizeOf, cipherBackend, createBlockCipher, hasLegacyProvider, type CipherBackend } from '../../src/crypto/blockcipher.js';
import type { BlockCipher, CipherName } from '../../src/crypto/types.js';
import { seededBytes } from '../helpers/prng.js';

const NO_LEGACY = 'OpenSSL legacy provider not loaded (start node with --openssl-legacy-provider)';

const bytes = seededBytes;

/** Key lengths eCryptfs uses for each cipher. */
const KEY_LENGTHS: Record<CipherName, number[]> = {
  aes: [16, 24, 32],
  des3_ede: [24],
  blowfish: [16, 24, 32, 40, 48, 56],
  cast5: [16],
  twofish: [16, 24, 32],
  cast6: [16, 24, 32],
};

const OPENSSL_CBC: Partial<Record<CipherName, (k: number) => string>> = {
  aes: (k) => `aes-${k * 8}-cbc`,
  des3_ede: () => 'des-ede3-cbc',
  blowfish: () => 'bf-cbc',
  cast5: () => 'cast5-cbc',
};

interface Case { seed: number; keyLen: number; count: number; extentSize: number }

function arbCase(name: CipherName): fc.Arbitrary<Case> {
  const bs = blockSizeOf(name);
  return fc.record({
    seed: fc.integer(),
    keyLen: fc.constantFrom(...KEY_LENGTHS[name]),
    count: fc.integer({ min: 1, max: 8 }),
    extentSize: fc.oneof(fc.constant(4096), fc.integer({ min: 1, max: 80 }).map((n) => n * bs)),
  });
}

function material(c: Case): { key: Buffer; data: Buffer; ivs: Buffer[] } {
  const all = bytes(c.seed, c.keyLen + 16 * c.count + c.count * c.extentSize);
  const key = all.subarray(0, c.keyLen);
  const ivs = Array.from({ length: c.count }, (_, i) => all.subarray(c.keyLen + 16 * i, c.keyLen + 16 * i + 16));
  const data = all.subarray(c.keyLen + 16 * c.count);
  return { key, data, ivs };
}

/** CBC per extent built from the cipher's own ECB, one block at a time: the obvious definition. */
function cbcFromEcb(c: BlockCipher, data: Buffer, extentSize: number, ivs: Buffer[]): Buffer {
  const bs = c.blockSize;
  const out = Buffer.alloc(data.length);
  ivs.forEach((iv, e) => {
    let prev = iv.subarray(0, bs);
    for (let o = e * extentSize; o < (e + 1) * extentSize; o += bs) {
      const x = Buffer.alloc(bs);
      for (let j = 0; j < bs; j++) x[j] = data[o + j] ^ prev[j];
      prev = c.ecbEncrypt(x);
      prev.copy(out, o);
    }
  });
  return out;
}

/** A fresh node:crypto cipher per extent: what the batched OpenSSL path must equal. */
function naive(algo: string, key: Buffer, data: Buffer, extentSize: number, ivs: Buffer[], bs: number, encrypt: boolean): Buffer {
  return Buffer.concat(ivs.map((iv, e) => {
    const c = encrypt ? createCipheriv(algo, key, iv.subarray(0, bs)) : createDecipheriv(algo, key, iv.subarray(0, bs));
    c.setAutoPadding(false);
    return Buffer.concat([c.update(data.subarray(e * extentSize, (e + 1) * extentSize)), c.final()]);
  }));
}

const ALL: { name: CipherName; backend: CipherBackend; skip: string | false }[] = [
  { name: 'aes', backend: 'openssl', skip: false },
  { name: 'des3_ede', backend: 'openssl', skip: false },
  { name: 'blowfish', backend: 'openssl', skip: hasLegacyProvider() ? false : NO_LEGACY },
  { name: 'cast5', backend: 'openssl', skip: hasLegacyProvider() ? false : NO_LEGACY },
  { name: 'blowfish', backend: 'js', skip: false },
  { name: 'cast5', backend: 'js', skip: false },
  { name: 'twofish', backend: 'js', skip: false },
  { name: 'cast6', backend: 'js', skip: false },
];

for (const { name, backend, skip } of ALL) {
  test(`${name} (${backend}): batched CBC round-trips, works in place, equals CBC from ECB`, { skip }, () => {
    fc.assert(fc.property(arbCase(name), (cs) => {
      const { key, data, ivs } = material(cs);
      const c = createBlockCipher(name, key, { backend });
      const srcCopy = Buffer.from(data);
      const ct = Buffer.alloc(data.length);
      c.cbcEncryptExtents(data, ct, cs.extentSize, ivs);
      assert.deepEqual(data, srcCopy, 'encrypt must not modify src');
      assert.deepEqual(ct, cbcFromEcb(c, data, cs.extentSize, ivs), 'equals CBC from ECB');

      const pt = Buffer.alloc(data.length);
      c.cbcDecryptExtents(ct, pt, cs.extentSize, ivs);
      assert.deepEqual(pt, data, 'round trip');

      const inPlace = Buffer.from(ct);
      c.cbcDecryptExtents(inPlace, inPlace, cs.extentSize, ivs);
      assert.deepEqual(inPlace, data, 'in-place decrypt');

      const inPlaceEnc = Buffer.from(data);
      c.cbcEncryptExtents(inPlaceEnc, inPlaceEnc, cs.extentSize, ivs);
      assert.deepEqual(inPlaceEnc, ct, 'in-place encrypt');

      // A batch must equal the same extents one call at a time.
      if (cs.count > 1) {
        const one = Buffer.alloc(data.length);
        ivs.forEach((iv, e) => {
          const r = [e * cs.extentSize, (e + 1) * cs.extentSize] as const;
          c.cbcEncryptExtents(data.subarray(...r), one.subarray(...r), cs.extentSize, [iv]);
        });
        assert.deepEqual(one, ct, 'batch equals one extent per call');
      }
    }), { numRuns: backend === 'js' ? 40 : 100 });
  });
}

for (const { name, backend, skip } of ALL.filter((x) => x.backend === 'openssl')) {
  test(`${name} (openssl): batched CBC equals a fresh createCipheriv per extent`, { skip }, () => {
    fc.assert(fc.property(arbCase(name), (cs) => {
      const { key, data, ivs } = material(cs);
      const c = createBlockCipher(name, key, { backend });
      const algo = OPENSSL_CBC[name]!(key.length);
      const bs = c.blockSize;
      const ct = Buffer.alloc(data.length);
      c.cbcEncryptExtents(data, ct, cs.extentSize, ivs);
      assert.deepEqual(ct, naive(algo, key, data, cs.extentSize, ivs, bs, true));
      const pt = Buffer.alloc(data.length);
      c.cbcDecryptExtents(data, pt, cs.extentSize, ivs);
      assert.deepEqual(pt, naive(algo, key, data, cs.extentSize, ivs, bs, false));
    }), { numRuns: 100 });
  });
}

const legacySkip = hasLegacyProvider() ? false : NO_LEGACY;
for (const [name, minKey, maxKey] of [['blowfish', 4, 56], ['cast5', 5, 16]] as const) {
  test(`${name}: pure TypeScript equals OpenSSL legacy on random keys and data (ECB and CBC)`, { skip: legacySkip }, () => {
    fc.assert(fc.property(
      fc.integer(), fc.integer({ min: minKey, max: maxKey }), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 4 }),
      (seed, keyLen, blocks, count) => {
        const extentSize = blocks * 8;
        const { key, data, ivs } = material({ seed, keyLen, count, extentSize });
        const js = createBlockCipher(name, key, { backend: 'js' });
        const ossl = createBlockCipher(name, key, { backend: 'openssl' });
        assert.deepEqual(js.ecbEncrypt(data), ossl.ecbEncrypt(data), 'ECB encrypt');
        assert.deepEqual(js.ecbDecrypt(data), ossl.ecbDecrypt(data), 'ECB decrypt');
        const a = Buffer.alloc(data.length), b = Buffer.alloc(data.length);
        js.cbcEncryptExtents(data, a, extentSize, ivs);
        ossl.cbcEncryptExtents(data, b, extentSize, ivs);
        assert.deepEqual(a, b, 'CBC encrypt');
        js.cbcDecryptExtents(data, a, extentSize, ivs);
        ossl.cbcDecryptExtents(data, b, extentSize, ivs);
        assert.deepEqual(a, b, 'CBC decrypt');
      },
    ), { numRuns: 150 });
  });
}

test('the default backend serves every cipher name with every eCryptfs key length', () => {
  for (const name of Object.keys(KEY_LENGTHS) as CipherName[]) {
    for (const k of KEY_LENGTHS[name]) {
      const c = createBlockCipher(name, bytes(k, k));
      assert.equal(c.backend, cipherBackend(name));
      assert.equal(c.keyBytes, k);
      assert.equal(c.blockSize, blockSizeOf(name));
      const data = bytes(7, 4096 * 2);
      const out = Buffer.alloc(data.length);
      const ivs = [bytes(1, 16), bytes(2, 16)];
      c.cbcEncryptExtents(data, out, 4096, ivs);
      c.cbcDecryptExtents(out, out, 4096, ivs);
      assert.deepEqual(out, data, `${name}-${k}`);
    }
  }
});

test('zero extents is a no-op', () => {
  const c = createBlockCipher('aes', Buffer.alloc(16));
  const dst = Buffer.alloc(16, 7);
  c.cbcEncryptExtents(Buffer.alloc(0), dst, 4096, []);
  c.cbcDecryptExtents(Buffer.alloc(0), dst, 4096, []);
  assert.deepEqual(dst, Buffer.alloc(16, 7));
});
