/** Key derivation, wrapped passphrases (v1 and v2), auth tokens, names: vectors from the spec and the corpus. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { isEcryptfsError } from '../../src/errors.js';
import { deriveKey, DEFAULT_SALT, FNEK_SALT } from '../../src/format/kdf.js';
import { unwrapPassphrase, wrapPassphrase, wrapPassphraseV1 } from '../../src/format/wrapped.js';
import { buildAuthTok, parseAuthTok } from '../../src/format/authtok.js';
import { decode64, encode64, parseEncryptedFilename } from '../../src/format/filename.js';
import { FIXTURES } from '../helpers/fixtures.js';

test('v1 wrapped passphrases: the ecryptfs-utils test vectors', () => {
  const cases: Array<[string, string, string, string]> = [
    ['This is test #1', 'Wrapping pass', '0011223344556677', '6ee51761d91019e7'],
    ['a'.repeat(64), 'z'.repeat(64), '5a175a175a175a17', '4cc3757c3f538695'],
    ['!', '*', '0123456789abcdef', 'bef9457e4740a855'],
  ];
  for (const [pass, wrap, salt, sig] of cases) {
    const f = wrapPassphraseV1(pass, wrap, Buffer.from(salt, 'hex'));
    assert.equal(f.subarray(0, 16).toString(), sig);
    assert.equal(unwrapPassphrase(f, wrap, Buffer.from(salt, 'hex')).toString(), pass);
    assert.throws(() => unwrapPassphrase(f, 'wrong', Buffer.from(salt, 'hex')), (e: unknown) => isEcryptfsError(e, 'EWRONGPASS'));
  }
});

test('v2 wrapped passphrases: the real setup-private file, and round trips', () => {
  const m = JSON.parse(readFileSync(join(FIXTURES, 'corpus', 'setup-private', 'manifest.json'), 'utf8'));
  const file = Buffer.from(m.dot_ecryptfs['wrapped-passphrase'].hex, 'hex');
  assert.equal(unwrapPassphrase(file, m.login_passphrase).toString(), m.passphrase);
  const w = wrapPassphrase('f00dfeedcafebabe0123456789abcdef', 'login');
  assert.equal(w.length, 58);
  assert.deepEqual([...w.subarray(0, 2)], [0x3a, 0x02]);
  assert.notDeepEqual(w, wrapPassphrase('f00dfeedcafebabe0123456789abcdef', 'login'), 'random salt per wrap');
  assert.equal(wrapPassphrase('short', 'x').length, 42);
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 120 }), (b) => {
      try {
        unwrapPassphrase(b, 'pw');
      } catch (e) {
        if (!isEcryptfsError(e)) throw e;
      }
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 20000) },
  );
});

test('auth token payload round-trips and matches the documented layout', () => {
  const key = randomBytes(64);
  const tok = buildAuthTok(key, '0123456789abcdef', DEFAULT_SALT);
  assert.equal(tok.length, 740);
  assert.equal(tok.readUInt16LE(0), 4);
  assert.equal(tok.readUInt32LE(640), 64);
  assert.equal(tok.readUInt32LE(644), 2);
  const p = parseAuthTok(tok);
  assert.deepEqual(p.key, key);
  assert.equal(p.sig, '0123456789abcdef');
});

test('the filename alphabet codec round-trips, and the Tag 70 parser only throws typed errors', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), (b) => {
      const s = encode64(b);
      assert.equal(s.length, 4 * Math.ceil(b.length / 3));
      assert.deepEqual(decode64(s).subarray(0, b.length), Buffer.from(b));
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 20000) },
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 300 }), (s) => {
      try {
        parseEncryptedFilename(`ECRYPTFS_FNEK_ENCRYPTED.${s}`);
      } catch (e) {
        if (!isEcryptfsError(e)) throw e;
      }
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 20000) },
  );
});

test('names of 1 to 143 UTF-8 bytes round-trip for every cipher and key size; 144 is ENAMETOOLONG (property)', async () => {
  const { encryptFilename, decryptFilename, maxClearNameLength } = await import('../../src/format/filename.js');
  const fnek = deriveKey('names-property', FNEK_SALT);
  const configs: Array<[import('../../src/crypto/types.js').CipherName, number]> = [['aes', 16], ['aes', 24], ['aes', 32], ['blowfish', 16], ['blowfish', 56], ['des3_ede', 24], ['twofish', 16], ['twofish', 32], ['cast6', 16], ['cast6', 32], ['cast5', 16]];
  for (const [cipher, kb] of configs) {
    assert.equal(maxClearNameLength(cipher), 143, cipher);
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 143 }), (s) => {
        const name = Buffer.from(s, 'utf8').subarray(0, 143);
        if (name.length === 0) return;
        const lower = encryptFilename(name, fnek, cipher, kb);
        assert.ok(lower.length <= 255);
        assert.deepEqual(decryptFilename(parseEncryptedFilename(lower), fnek, cipher, kb), name);
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 300) },
    );
    assert.throws(() => encryptFilename(Buffer.alloc(144, 0x61), fnek, cipher, kb), (e: unknown) => isEcryptfsError(e, 'ENAMETOOLONG'));
  }
});
