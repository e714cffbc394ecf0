/** Header and key packets: kernel-made headers parse, ours round-trip, garbage gives typed errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { isEcryptfsError } from '../../src/errors.js';
import { buildHeaderBytes, buildHeaderRegion, parseHeader, unwrapFek, wrapFek, FLAG_ENCRYPTED } from '../../src/format/header.js';
import { deriveKey } from '../../src/format/kdf.js';
import { createBlockCipher } from '../../src/crypto/blockcipher.js';
import type { CipherName } from '../../src/crypto/types.js';
import { manifest, unpackLower } from '../helpers/fixtures.js';

const CODE: Record<string, number> = { 'aes-16': 7, 'aes-24': 8, 'aes-32': 9, 'blowfish-16': 4, 'blowfish-56': 4, 'des3_ede-24': 2, 'cast5-16': 3, 'twofish-32': 10, 'cast6-32': 11 };
const TAG3_LEN: Record<number, number> = { 16: 0x1d, 24: 0x25, 32: 0x2d, 56: 0x45 };

for (const c of ['aes128-plain', 'aes256-fnek', 'blowfish-128', 'blowfish-448', 'des3_ede-192', 'cast5-128']) {
  test(`kernel headers of ${c} parse with the documented fields`, async () => {
    const m = manifest(c);
    const lower = await unpackLower(c);
    try {
      const key = deriveKey(m.passphrase, Buffer.from('0011223344556677', 'hex'));
      for (const f of m.files.filter((f) => f.type === 'file' && f.lower && f.sha256)) {
        const raw = await fsp.readFile(join(lower.path, f.lower!));
        const h = parseHeader(raw.subarray(0, 4096));
        assert.equal(h.size, f.size);
        assert.equal(h.version, 3);
        assert.equal(h.flags, m.filename_encryption ? 0x0a : 0x02);
        assert.equal(h.extentSize, 4096);
        assert.equal(h.headerExtents, 2);
        assert.equal(h.keys.length, 1);
        assert.equal(h.keys[0].sig, m.sigs.ecryptfs_sig);
        assert.equal(h.keys[0].cipherCode, CODE[`${m.cipher}-${m.key_bytes}`]);
        assert.equal(raw[27], m.cipher === 'aes' && m.key_bytes === 24 ? 0x2d : TAG3_LEN[m.key_bytes], 'Tag 3 length byte');
        const { cipher, fek } = unwrapFek(h.keys[0], key.key);
        assert.equal(cipher, m.cipher);
        assert.equal(fek.length, m.key_bytes);
      }
    } finally {
      lower.cleanup();
    }
  });
}

test('headers built from the kernel files\' own fields are the kernel\'s header regions, byte for byte', async () => {
  let checked = 0;
  for (const c of ['aes128-plain', 'aes256-fnek', 'blowfish-448', 'des3_ede-192', 'cast5-128']) {
    const m = manifest(c);
    const lower = await unpackLower(c);
    try {
      for (const f of m.files.filter((f) => f.type === 'file' && f.lower && f.sha256)) {
        const raw = await fsp.readFile(join(lower.path, f.lower!));
        const h = parseHeader(raw.subarray(0, 4096));
        const fields = { size: h.size, flags: h.flags, keys: h.keys };
        const marker = raw.subarray(8, 12);
        assert.deepEqual(buildHeaderRegion(fields, marker), raw.subarray(0, 8192), `${c}: ${f.path}`);
        const bytes = buildHeaderBytes(fields, marker);
        assert.deepEqual(bytes, raw.subarray(0, bytes.length));
        assert.equal(raw[bytes.length], 0, 'the packet set ends where the kernel\'s does');
        checked++;
      }
    } finally {
      lower.cleanup();
    }
  }
  assert.ok(checked > 0);
});

test('wrap/unwrap and build/parse round-trip for every cipher and key size', () => {
  const kek = randomBytes(64);
  const configs: Array<[CipherName, number]> = [['aes', 16], ['aes', 24], ['aes', 32], ['blowfish', 16], ['blowfish', 32], ['blowfish', 56], ['des3_ede', 24], ['twofish', 16], ['twofish', 32], ['cast6', 16], ['cast6', 32], ['cast5', 16]];
  for (const [cipher, kb] of configs) {
    const fek = randomBytes(kb);
    const w = wrapFek(fek, cipher, kek, '0123456789abcdef');
    if (cipher === 'aes' && kb === 24) assert.equal(w.encryptedKey.length, 32, 'AES-192 FEK is wrapped as 32 bytes');
    const region = buildHeaderRegion({ size: 123456, flags: FLAG_ENCRYPTED, keys: [w] });
    assert.equal(region.length, 8192);
    const h = parseHeader(region);
    assert.equal(h.size, 123456);
    const u = unwrapFek(h.keys[0], kek);
    assert.equal(u.cipher, cipher);
    assert.deepEqual(u.fek, fek);
  }
});

test('a kept cipher wraps each file key exactly as a fresh one, call after call, for every cipher', () => {
  const kek = randomBytes(64);
  const configs: Array<[CipherName, number]> = [['aes', 16], ['aes', 24], ['aes', 32], ['blowfish', 16], ['blowfish', 56], ['des3_ede', 24], ['twofish', 32], ['cast6', 16], ['cast5', 16]];
  for (const [cipher, kb] of configs) {
    const keyed = createBlockCipher(cipher, kek.subarray(0, kb));
    for (let i = 0; i < 4; i++) {
      // Repeated and equal blocks: a context that chained from the last call, or from block to block, shows.
      const fek = i === 3 ? Buffer.alloc(kb, 7) : randomBytes(kb);
      const kept = wrapFek(fek, cipher, kek, '0123456789abcdef', keyed);
      assert.deepEqual(kept, wrapFek(fek, cipher, kek, '0123456789abcdef'), `${cipher}-${kb} call ${i}`);
      assert.deepEqual(unwrapFek(kept, kek).fek, fek);
    }
    keyed.destroy?.();
  }
});

test('random bytes and mutated headers give only typed errors (property)', () => {
  const kek = randomBytes(64);
  const good = buildHeaderBytes({ size: 6, flags: FLAG_ENCRYPTED, keys: [wrapFek(randomBytes(16), 'aes', kek, '0123456789abcdef')] });
  const check = (b: Uint8Array) => {
    try {
      parseHeader(b);
      parseHeader(b, 'xattr');
    } catch (e) {
      if (!isEcryptfsError(e)) throw e;
    }
  };
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), check), { numRuns: Number(process.env.FUZZ_RUNS ?? 20000) });
  fc.assert(
    fc.property(fc.integer({ min: 0, max: good.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: good.length }), (i, v, cut) => {
      const b = Buffer.from(good);
      b[i] = v;
      // Keep the marker valid so the packet parser is exercised.
      check(b.subarray(0, cut));
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 20000) },
  );
});
