/**
 * Wrapped-passphrase files (ECRYPTFS-FORMAT §10, CORPUS-RULES §6): files written by the real
 * ecryptfs-wrap-passphrase / rewrap / setup-private, the v1 vectors, round trips, parser fuzz.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isEcryptfsError } from '../../src/errors.js';
import { deriveKey } from '../../src/format/kdf.js';
import {
  buildWrappedPassphrase,
  parseWrappedPassphrase,
  unwrapPassphrase,
  unwrapPassphraseAsync,
  wrapPassphrase,
  wrapPassphraseAsync,
  wrapPassphraseV1,
} from '../../src/format/wrapped.js';
import { corpusFile, corpusManifest } from '../helpers/corpus.js';

const isCode = (code: string) => (e: unknown) => isEcryptfsError(e, code as never);

/** pairs.tsv: file, mount passphrase, wrapping passphrase. */
function pairs(): Array<{ file: string; passphrase: string; wrapping: string }> {
  return corpusFile('userspace-keys', 'wrapped/pairs.tsv')
    .toString('utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const [file, passphrase, wrapping] = l.split('\t');
      return { file, passphrase, wrapping };
    });
}

test('ecryptfs-wrap-passphrase files (v2) unwrap to unwrap-N.out; "-again" wraps differ only by salt', () => {
  const ps = pairs();
  assert.equal(ps.length, 4);
  for (const [i, p] of ps.entries()) {
    const expected = corpusFile('userspace-keys', `wrapped/unwrap-${i + 1}.out`).toString('utf8').split('\n')[0];
    assert.equal(expected, p.passphrase);
    for (const name of [p.file, `${p.file}-again`]) {
      const file = corpusFile('userspace-keys', `wrapped/${name}`);
      const w = parseWrappedPassphrase(file);
      assert.equal(w.version, 2);
      assert.equal(w.ciphertext.length, Math.ceil(p.passphrase.length / 16) * 16);
      assert.equal(file.length, 26 + w.ciphertext.length);
      assert.equal(w.sig, deriveKey(p.wrapping, w.salt).sig, `${name}: sig of the wrapping key`);
      assert.equal(unwrapPassphrase(file, p.wrapping).toString('utf8'), expected, name);
      // Re-wrapping with the file's salt reproduces the file byte for byte.
      assert.deepEqual(wrapPassphrase(p.passphrase, p.wrapping, w.salt), file, `${name} rebuilt`);
      assert.deepEqual(buildWrappedPassphrase(w), file);
    }
    assert.notDeepEqual(corpusFile('userspace-keys', `wrapped/${p.file}`), corpusFile('userspace-keys', `wrapped/${p.file}-again`));
  }
  // The 32-character passphrase of pair 1 gives two identical ECB blocks.
  const c1 = parseWrappedPassphrase(corpusFile('userspace-keys', 'wrapped/wrapped-1')).ciphertext;
  assert.deepEqual(c1.subarray(0, 16), c1.subarray(16, 32));
});

test('wrong password: EWRONGPASS, never echoing the password', () => {
  const file = corpusFile('userspace-keys', 'wrapped/wrapped-2');
  const secret = 'not-the-wrap-pw-2';
  assert.throws(() => unwrapPassphrase(file, secret), (e: unknown) => isCode('EWRONGPASS')(e) && !(e as Error).message.includes(secret));
  assert.match(corpusFile('userspace-keys', 'wrapped/unwrap-wrong.out').toString(), /Unwrapping passphrase failed/);
});

test('ecryptfs-rewrap-passphrase output unwraps with the new password only', async () => {
  const file = corpusFile('userspace-keys', 'wrapped/rewrapped-1');
  const expected = corpusFile('userspace-keys', 'wrapped/unwrap-rewrapped-1.out').toString('utf8').split('\n')[0];
  assert.equal(parseWrappedPassphrase(file).version, 2);
  assert.equal((await unwrapPassphraseAsync(file, 'new-wrap-pw-1')).toString(), expected);
  await assert.rejects(unwrapPassphraseAsync(file, 'wrap-pw-1'), isCode('EWRONGPASS'));
});

test('insert-wrapped-passphrase: the inserted key sig is the unwrapped passphrase\'s (default salt)', () => {
  for (const [i, p] of pairs().entries()) {
    const out = corpusFile('userspace-keys', `wrapped/insert-${i + 1}.out`).toString('utf8');
    const sig = /sig \[([0-9a-f]{16})\]/.exec(out)?.[1];
    const pass = unwrapPassphrase(corpusFile('userspace-keys', `wrapped/${p.file}`), p.wrapping);
    assert.equal(deriveKey(pass).sig, sig, p.file);
  }
});

test('setup-private: ~/.ecryptfs/wrapped-passphrase unwraps with the login password', () => {
  const m = corpusManifest('setup-private');
  const dot = m.dot_ecryptfs as Record<string, { hex: string | null; text: string | null }>;
  const file = Buffer.from(dot['wrapped-passphrase'].hex!, 'hex');
  assert.equal(file.length, 58);
  const pass = unwrapPassphrase(file, m.login_passphrase as string);
  assert.equal(pass.toString(), 'mount-pass-testuser-0123456789ab');
  assert.equal(pass.toString(), m.passphrase);
  assert.equal(dot['Private.sig'].text, `${deriveKey(pass).sig}\n${m.sigs!.ecryptfs_fnek_sig}\n`);
});

test('v1 files: the ecryptfs-utils test vectors (salt from the caller)', () => {
  const vectors: Array<[string, string, string, string]> = [
    ['This is test #1', 'Wrapping pass', '0011223344556677', '6ee51761d91019e7'],
    ['a'.repeat(64), 'z'.repeat(64), '5a175a175a175a17', '4cc3757c3f538695'],
    ['!', '*', '0123456789abcdef', 'bef9457e4740a855'],
  ];
  for (const [pass, wrapping, saltHex, sig] of vectors) {
    const salt = Buffer.from(saltHex, 'hex');
    const f = wrapPassphraseV1(pass, wrapping, salt);
    assert.equal(f.subarray(0, 16).toString('latin1'), sig, pass);
    assert.equal(f.length, 16 + Math.ceil(pass.length / 16) * 16); // 64 bytes: no extra block
    const parsed = parseWrappedPassphrase(f);
    assert.equal(parsed.version, 1);
    assert.equal(parsed.salt, undefined);
    assert.equal(unwrapPassphrase(f, wrapping, salt).toString(), pass);
    if (saltHex !== '0011223344556677') assert.throws(() => unwrapPassphrase(f, wrapping), isCode('EWRONGPASS'), 'default salt is wrong here');
  }
  assert.equal(unwrapPassphrase(wrapPassphraseV1('This is test #1', 'Wrapping pass'), 'Wrapping pass').toString(), 'This is test #1');
});

test('layout errors: short, unknown version, bad sig, bad ciphertext size; bad inputs to wrap', () => {
  const good = wrapPassphrase('abc', 'w', Buffer.alloc(8, 1));
  assert.equal(good.length, 42);
  assert.throws(() => parseWrappedPassphrase(good.subarray(0, 15)), isCode('ECORRUPT'));
  assert.throws(() => parseWrappedPassphrase(Buffer.concat([Buffer.from([0x3a, 0x03]), good.subarray(2)])), isCode('EUNSUPPORTED'));
  assert.throws(() => parseWrappedPassphrase(good.subarray(0, 41)), isCode('ECORRUPT'));
  assert.throws(() => parseWrappedPassphrase(good.subarray(0, 26)), isCode('ECORRUPT'));
  assert.throws(() => parseWrappedPassphrase(Buffer.concat([good, Buffer.alloc(64)])), isCode('ECORRUPT'));
  const badSig = Buffer.from(good);
  badSig[12] = 0x78; // 'x'
  assert.throws(() => parseWrappedPassphrase(badSig), isCode('ECORRUPT'));
  assert.throws(() => wrapPassphrase('', 'w'), isCode('EINVAL'));
  assert.throws(() => wrapPassphrase('p'.repeat(65), 'w'), isCode('EINVAL'));
  assert.throws(() => wrapPassphrase('a\0b', 'w'), isCode('EINVAL'));
  assert.throws(() => wrapPassphrase('p', 'w'.repeat(65)), isCode('EINVAL'));
});

test('wrap/unwrap round trip (property; one derivation per case) and parser fuzz', async () => {
  // The KDF is ~100 ms, so the property varies the passphrase, not the derivations.
  const salt = Buffer.from('a1b2c3d4e5f60718', 'hex');
  const f0 = await wrapPassphraseAsync('seed', 'pw', salt);
  assert.deepEqual(f0, wrapPassphrase('seed', 'pw', salt));
  const key = deriveKey('pw', salt);
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }).filter((b) => !b.includes(0)), (p) => {
      const f = wrapPassphrase(p, 'pw', salt);
      const w = parseWrappedPassphrase(f);
      assert.equal(w.sig, key.sig);
      assert.equal(w.ciphertext.length, Math.ceil(p.length / 16) * 16);
      assert.deepEqual(unwrapPassphrase(f, 'pw'), Buffer.from(p));
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 10) },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 120 }), fc.boolean(), (b, v2) => {
      const bytes = v2 && b.length >= 2 ? Buffer.concat([Buffer.from([0x3a, 0x02]), b]) : Buffer.from(b);
      try {
        parseWrappedPassphrase(bytes);
      } catch (e) {
        if (!isEcryptfsError(e)) throw e;
      }
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 3000) },
  );
});
