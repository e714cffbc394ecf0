/** Passphrase -> key and sig (ECRYPTFS-FORMAT §5, CORPUS-RULES §1): corpus and spec vectors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { isEcryptfsError } from '../../src/errors.js';
import { DEFAULT_SALT, deriveKey, deriveKeyAsync, FNEK_SALT, sigOfKey } from '../../src/format/kdf.js';
import { corpusCaseNames, corpusFile, corpusManifest } from '../helpers/corpus.js';

test('salts: 00 11 .. 77 and the ASCII "99887766"', () => {
  assert.equal(DEFAULT_SALT.toString('hex'), '0011223344556677');
  assert.equal(FNEK_SALT.toString('hex'), '3939383837373636');
});

test('sigs of the corpus table and the spec vector (default and FNEK salt)', () => {
  const table: Array<[string, string, string]> = [
    ['test123', '2a97418edca01eb9', '33a5d5e39463d53f'],
    ['passphrase', '1848e1d7b8a187fc', '554c7c95a5b5d6ee'],
    ['oracle-pass-aes128', 'ea9454409d17f45d', 'e42c4258d4e1ef45'],
    ['0123456789abcdef0123456789abcdef', '849d6b79848a0296', '9487d0e1beb5be83'],
    ['ünïcødé pass', '3bd8c09177234196', '6cd9467f30d28208'],
    ['mount-pass-testuser-0123456789ab', 'fd24fca8a877823b', '80d0fff162495232'],
    ['test', 'd395309aaad4de06', 'be877764c5918621'],
  ];
  for (const [p, sig, fnekSig] of table) {
    const k = deriveKey(p);
    assert.equal(k.sig, sig, p);
    assert.equal(k.key.length, 64);
    assert.equal(sigOfKey(k.key), sig);
    assert.equal(deriveKey(Buffer.from(p, 'utf8'), FNEK_SALT).sig, fnekSig, `${p} (FNEK salt)`);
  }
});

test('the sigs ecryptfs-add-passphrase printed (userspace-keys/logs/sigs.tsv)', () => {
  const lines = corpusFile('userspace-keys', 'logs/sigs.tsv').toString('utf8').split('\n').filter((l) => l.trim());
  assert.ok(lines.length >= 5);
  for (const line of lines) {
    const [pass, sig, both] = line.split('\t');
    const [s1, s2] = both.trim().split(' ');
    assert.equal(deriveKey(pass).sig, sig, pass);
    assert.equal(s1, sig);
    assert.equal(deriveKey(pass, FNEK_SALT).sig, s2, `${pass} --fnek`);
  }
});

test('every corpus manifest: ecryptfs_sig and ecryptfs_fnek_sig from its passphrase', () => {
  let checked = 0;
  for (const c of corpusCaseNames()) {
    const m = corpusManifest(c);
    if (!m.passphrase || !m.sigs) continue;
    assert.equal(deriveKey(m.passphrase).sig, m.sigs.ecryptfs_sig, c);
    if (m.sigs.ecryptfs_fnek_sig) {
      // Helper mounts reuse the mount key as FNEK; add-passphrase --fnek / ~/Private use the FNEK salt.
      const fnekPass = m.fnek_passphrase ?? m.passphrase;
      const helper = m.sigs.ecryptfs_fnek_sig === m.sigs.ecryptfs_sig;
      assert.equal(deriveKey(fnekPass, helper ? undefined : FNEK_SALT).sig, m.sigs.ecryptfs_fnek_sig, `${c}: fnek sig`);
      if (['aes128-fnek-addpassphrase', 'aes128-fnek-edge', 'setup-private'].includes(c)) assert.ok(!helper, `${c} uses the FNEK salt`);
    }
    checked++;
  }
  assert.ok(checked >= 12, `checked ${checked} cases`);
});

test('the algorithm itself: 65536 SHA-512 over salt || passphrase', () => {
  let h = createHash('sha512').update(DEFAULT_SALT).update('abc').digest();
  for (let i = 1; i < 65536; i++) h = createHash('sha512').update(h).digest();
  assert.deepEqual(deriveKey('abc').key, h);
});

test('async derivation: same result, keeps the event loop turning', async () => {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const k = await deriveKeyAsync('test123', FNEK_SALT);
  clearInterval(timer);
  assert.equal(k.sig, '33a5d5e39463d53f');
  assert.deepEqual(k.key, deriveKey('test123', FNEK_SALT).key);
  assert.ok(ticks >= 2, `event loop ran ${ticks} timer callbacks during the derivation`);
});

test('limits: 64 bytes ok, 65 is EINVAL (UTF-8 bytes count), salt must be 8 bytes', async () => {
  assert.equal(deriveKey('x'.repeat(64)).key.length, 64);
  assert.throws(() => deriveKey('x'.repeat(65)), (e: unknown) => isEcryptfsError(e, 'EINVAL'));
  assert.throws(() => deriveKey('é'.repeat(33)), (e: unknown) => isEcryptfsError(e, 'EINVAL'));
  assert.throws(() => deriveKey('x', Buffer.alloc(7)), (e: unknown) => isEcryptfsError(e, 'EINVAL'));
  await assert.rejects(deriveKeyAsync(Buffer.alloc(65, 1)), (e: unknown) => isEcryptfsError(e, 'EINVAL'));
  const secret = 'y'.repeat(65);
  try {
    deriveKey(secret);
  } catch (e) {
    assert.ok(!(e as Error).message.includes(secret), 'error message must not echo the passphrase');
  }
});
