/**
 * Encrypted names and symlink targets (ECRYPTFS-FORMAT §7, CORPUS-RULES §5): every name and
 * target the kernel wrote in the corpus is re-encrypted byte for byte and decrypted back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { isEcryptfsError } from '../../src/errors.js';
import type { CipherName } from '../../src/crypto/types.js';
import { CIPHERS, cipherCode } from '../../src/format/ciphers.js';
import {
  decode64,
  decryptFilename,
  encode64,
  encryptedNameLength,
  encryptFilename,
  FilenameEncryptor,
  FNEK_PREFIX,
  isEncoded64,
  maxClearNameLength,
  namePrefix,
  parseEncryptedFilename,
  type Fnek,
} from '../../src/format/filename.js';
import { deriveKey, FNEK_SALT, sigOfKey } from '../../src/format/kdf.js';
import { corpusCaseNames, corpusManifest, type CorpusManifest } from '../helpers/corpus.js';

const runs = (n: number) => Number(process.env.FUZZ_RUNS ?? n);
const ALL: Array<[CipherName, number]> = [
  ['aes', 16], ['aes', 24], ['aes', 32], ['blowfish', 16], ['blowfish', 32], ['blowfish', 56], ['des3_ede', 24],
  ['twofish', 16], ['twofish', 32], ['cast6', 16], ['cast6', 32], ['cast5', 16],
];
const isCode = (code: string) => (e: unknown) => isEcryptfsError(e, code as never);

/** A random 64-byte FNEK (no KDF needed: names only use the key bytes and the sig). */
function randomFnek(): Fnek {
  const key = randomBytes(64);
  return { key, sig: sigOfKey(key) };
}

/** The FNEK of a corpus case: helper mounts reuse the mount key, add-passphrase --fnek uses the FNEK salt. */
function caseFnek(m: CorpusManifest): Fnek {
  const pass = m.fnek_passphrase ?? m.passphrase!;
  const want = m.sigs!.ecryptfs_fnek_sig!;
  const k = want === m.sigs!.ecryptfs_sig ? deriveKey(pass) : deriveKey(pass, FNEK_SALT);
  assert.equal(k.sig, want, `${m.case}: FNEK sig`);
  return k;
}

const fnekCases = corpusCaseNames().filter((c) => corpusManifest(c).filename_encryption === true);

test('the corpus has the FNEK cases this test relies on', () => {
  for (const c of ['aes256-fnek', 'aes128-fnek-addpassphrase', 'aes128-fnek-edge', 'blowfish-128', 'blowfish-448', 'des3_ede-192', 'cast5-128', 'setup-private']) {
    assert.ok(fnekCases.includes(c), c);
  }
});

for (const c of fnekCases) {
  test(`corpus ${c}: every name and symlink target re-encrypts to the kernel's bytes and decrypts back`, () => {
    const m = corpusManifest(c);
    const fnek = caseFnek(m);
    const cipher = (m.fn_cipher ?? m.cipher) as CipherName;
    const kb = (m.fn_key_bytes ?? m.key_bytes)!;
    let names = 0;
    let targets = 0;
    // One encryptor for every name, as a mount keeps it: its cipher and per-length prefixes reused.
    const shared = new FilenameEncryptor(fnek, cipher, kb);
    for (const f of m.files ?? []) {
      if (!f.lower) continue;
      const clear = f.path.split('/');
      const lower = f.lower.split('/');
      assert.equal(lower.length, clear.length, f.path);
      clear.forEach((name, i) => {
        assert.equal(encryptFilename(Buffer.from(name, 'utf8'), fnek, cipher, kb), lower[i], `${c}: ${f.path} [${i}]`);
        assert.equal(shared.encrypt(Buffer.from(name, 'utf8')), lower[i], `${c}: ${f.path} [${i}] (shared encryptor)`);
        const parsed = parseEncryptedFilename(lower[i]);
        assert.equal(parsed.sig, fnek.sig);
        assert.equal(parsed.cipherCode, cipherCode(cipher, kb));
        assert.equal(decryptFilename(parsed, fnek.key, cipher, kb).toString('utf8'), name);
        assert.equal(shared.decrypt(parsed.ciphertext).toString('utf8'), name, `${c}: ${f.path} [${i}] (shared decrypt)`);
        names++;
      });
      if (f.type === 'symlink' && f.symlink_target && f.lower_symlink_target) {
        const t = Buffer.from(f.symlink_target, 'utf8');
        assert.equal(encryptFilename(t, fnek, cipher, kb, 4095), f.lower_symlink_target, `${c}: target of ${f.path}`);
        assert.equal(shared.encrypt(t, 4095), f.lower_symlink_target, `${c}: target of ${f.path} (shared encryptor)`);
        assert.deepEqual(decryptFilename(parseEncryptedFilename(f.lower_symlink_target), fnek, cipher, kb), t);
        targets++;
      }
    }
    // Every encrypted entry of the lower listing decodes too (hard links, empty dirs included).
    for (const e of m.lower_listing ?? []) {
      for (const comp of e.path.split('/')) {
        if (comp.startsWith(FNEK_PREFIX)) assert.ok(decryptFilename(parseEncryptedFilename(comp), fnek, cipher, kb).length > 0, comp);
      }
    }
    assert.ok(names > 0, 'names checked');
    if (c !== 'setup-private' && c !== 'aes128-fnek-addpassphrase') assert.ok(targets > 0, 'targets checked');
  });
}

test('aes128-fnek-edge: long targets use a 2-byte packet length; 3007 bytes -> 4072 chars, 3008 too long for 4095', () => {
  const m = corpusManifest('aes128-fnek-edge');
  const fnek = caseFnek(m);
  for (const f of m.files ?? []) {
    if (f.type !== 'symlink' || !f.symlink_target || !f.lower_symlink_target) continue;
    const n = Buffer.byteLength(f.symlink_target);
    assert.equal(encryptedNameLength(n, 'aes'), f.lower_symlink_target.length, f.path);
    const packet = decode64(f.lower_symlink_target.slice(FNEK_PREFIX.length));
    const body = 9 + 16 * Math.ceil((17 + n) / 16);
    assert.equal(packet[1] >= 192, body >= 192, `${f.path}: length field size`);
  }
  const pattern = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => 0x61 + (i % 26)));
  assert.equal(encryptFilename(pattern(3007), fnek, 'aes', 16, 4095).length, 4072);
  assert.throws(() => encryptFilename(pattern(3008), fnek, 'aes', 16, 4095), isCode('ENAMETOOLONG'));
  assert.equal(maxClearNameLength('aes', 4095), 3007);
  const long = encryptFilename(pattern(3007), fnek, 'aes', 16, 4095);
  assert.deepEqual(decryptFilename(parseEncryptedFilename(long), fnek, 'aes', 16), pattern(3007));
});

test('the spec example: "test" FNEK (ASCII salt), AES-256, loremipsum.txt', () => {
  const fnek = deriveKey('test', FNEK_SALT);
  const lower = 'ECRYPTFS_FNEK_ENCRYPTED.FWayVrRYlN446EY.WUc7GBFqG9GB6qF3eRmJZ7NYS7ANeS4Gfi9c34ZDTU--';
  assert.equal(encryptFilename(Buffer.from('loremipsum.txt'), fnek, 'aes', 32), lower);
  assert.equal(decryptFilename(parseEncryptedFilename(lower), fnek, 'aes', 32).toString(), 'loremipsum.txt');
});

test('lower name lengths (CORPUS-RULES §5) and the 143-byte limit for 8- and 16-byte blocks', () => {
  const len16: Array<[number, number]> = [[1, 84], [15, 84], [16, 104], [31, 104], [32, 124], [50, 148], [100, 212], [140, 252], [143, 252]];
  const len8: Array<[number, number]> = [[1, 72], [7, 72], [8, 84], [15, 84], [16, 92], [100, 200]];
  const targets: Array<[number, number]> = [[150, 276], [160, 296], [200, 340], [300, 468], [1000, 1408], [2000, 2752]];
  const fnek = randomFnek();
  for (const [cipher, kb] of ALL) {
    const table = CIPHERS[cipher].blockSize === 16 ? [...len16, ...targets] : len8;
    for (const [n, want] of table) {
      assert.equal(encryptedNameLength(n, cipher), want, `${cipher} ${n}`);
      assert.equal(encryptFilename(Buffer.alloc(n, 0x61), fnek, cipher, kb, 4095).length, want, `${cipher}-${kb} ${n}`);
    }
    assert.equal(maxClearNameLength(cipher), 143, cipher);
    assert.ok(encryptFilename(Buffer.alloc(143, 0x62), fnek, cipher, kb).length <= 255);
    assert.throws(() => encryptFilename(Buffer.alloc(144, 0x62), fnek, cipher, kb), isCode('ENAMETOOLONG'));
  }
  // UTF-8 counts bytes: 71 'é' = 142 bytes fit, 72 = 144 do not.
  assert.ok(encryptFilename(Buffer.from('é'.repeat(71)), fnek, 'aes', 16));
  assert.throws(() => encryptFilename(Buffer.from('é'.repeat(72)), fnek, 'aes', 16), isCode('ENAMETOOLONG'));
  assert.throws(() => encryptFilename(Buffer.alloc(0), fnek, 'aes', 16), isCode('EINVAL'));
});

test('the name prefix is the MD5 chain of the FNEK with 0x00 -> 0x42, and identical names give identical lower names', () => {
  const fnek = randomFnek();
  const p = namePrefix(fnek.key, 40);
  assert.ok(!p.includes(0));
  assert.deepEqual(namePrefix(fnek.key, 16), p.subarray(0, 16));
  const a = encryptFilename(Buffer.from('same'), fnek, 'aes', 16);
  assert.equal(encryptFilename(Buffer.from('same'), fnek, 'aes', 16), a);
  // Same FNEK: the first cipher block is shared by every name of the same block count.
  const b = encryptFilename(Buffer.from('other'), fnek, 'aes', 16);
  assert.equal(a.slice(0, 24 + 20), b.slice(0, 24 + 20));
});

test('wrong key or key size is EBADNAME (prefix check), kernel-style decryption skips the check', () => {
  const fnek = randomFnek();
  const lower = encryptFilename(Buffer.from('hello.txt'), fnek, 'aes', 32);
  const parsed = parseEncryptedFilename(lower);
  assert.throws(() => decryptFilename(parsed, randomBytes(64), 'aes', 32), isCode('EBADNAME'));
  assert.throws(() => decryptFilename(parsed, fnek.key, 'aes', 16), isCode('EBADNAME'));
  assert.throws(() => decryptFilename(parsed, fnek.key.subarray(0, 32), 'aes', 32), isCode('EINVAL'));
  assert.equal(decryptFilename(parsed, fnek, 'aes', 32, { verifyPrefix: false }).toString(), 'hello.txt');
  assert.throws(() => decryptFilename({ ciphertext: Buffer.alloc(15) }, fnek.key, 'aes', 32), isCode('EBADNAME'));
  // The shared codec checks the same way.
  assert.equal(new FilenameEncryptor(fnek, 'aes', 32).decrypt(parsed.ciphertext).toString(), 'hello.txt');
  assert.throws(() => new FilenameEncryptor(fnek, 'aes', 16).decrypt(parsed.ciphertext), isCode('EBADNAME'));
  assert.throws(() => new FilenameEncryptor(randomFnek(), 'aes', 32).decrypt(parsed.ciphertext), isCode('EBADNAME'));
  assert.throws(() => new FilenameEncryptor(fnek, 'aes', 32).decrypt(Buffer.alloc(15)), isCode('EBADNAME'));
});

test('the parser: strict by default, kernel-lenient on request', () => {
  const fnek = randomFnek();
  const lower = encryptFilename(Buffer.from('x'), fnek, 'aes', 16);
  assert.throws(() => parseEncryptedFilename('plain.txt'), isCode('EBADNAME'));
  assert.throws(() => parseEncryptedFilename(FNEK_PREFIX), isCode('EBADNAME'));
  assert.throws(() => parseEncryptedFilename(`${lower}~`), isCode('EBADNAME'));
  assert.throws(() => parseEncryptedFilename(`${lower}----`), isCode('EBADNAME'));
  assert.throws(() => parseEncryptedFilename(lower.slice(0, -4)), isCode('EBADNAME'));
  assert.deepEqual(parseEncryptedFilename(`${lower}----`, { lenient: true }), parseEncryptedFilename(lower));
  assert.deepEqual(parseEncryptedFilename(`${lower}~`, { lenient: true }), parseEncryptedFilename(lower));
  assert.ok(isEncoded64('-.09AZaz') && !isEncoded64('a b') && !isEncoded64('é'));
  assert.deepEqual(decode64('~~~~'), Buffer.alloc(3)); // unknown characters decode as 0, as in the kernel
  assert.throws(() => decode64('~~~~', true), isCode('EBADNAME'));
});

test('codec: 3 bytes -> 4 chars, zero padding, round trip (property)', () => {
  assert.equal(encode64(Buffer.from([0, 0, 0])), '----');
  assert.equal(encode64(Buffer.from([0xff, 0xff, 0xff])), 'zzzz');
  assert.equal(encode64(Buffer.from([0x46])), 'FU--');
  assert.equal(encode64(Buffer.from([0x46, 0x50])), 'FZ--');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      const s = encode64(b);
      assert.equal(s.length, 4 * Math.ceil(b.length / 3));
      assert.ok(isEncoded64(s));
      const d = decode64(s, true);
      assert.deepEqual(d.subarray(0, b.length), Buffer.from(b));
      assert.ok(d.subarray(b.length).every((x) => x === 0));
    }),
    { numRuns: runs(2000) },
  );
});

test('names of 1..143 random bytes round-trip under random keys, every cipher and key size (property)', () => {
  const keys = Array.from({ length: 8 }, randomFnek);
  for (const [cipher, kb] of ALL) {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 143 }), fc.nat(keys.length - 1), (name, ki) => {
        const fnek = keys[ki];
        const lower = encryptFilename(name, fnek, cipher, kb);
        assert.equal(lower.length, encryptedNameLength(name.length, cipher));
        assert.ok(lower.length <= 255);
        const parsed = parseEncryptedFilename(lower);
        assert.equal(parsed.sig, fnek.sig);
        assert.deepEqual(decryptFilename(parsed, fnek, cipher, kb), Buffer.from(name));
      }),
      { numRuns: runs(100) },
    );
  }
});

test('random lower names and packets: parser and decryptor throw only EcryptfsError (property)', () => {
  const fnek = randomFnek();
  const alphabet = '-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
  const check = (s: string) => {
    try {
      const p = parseEncryptedFilename(s, { lenient: s.length % 2 === 0 });
      for (const [cipher, kb] of [['aes', 16], ['blowfish', 16]] as const) {
        try {
          decryptFilename(p, fnek, cipher, kb);
        } catch (e) {
          if (!isEcryptfsError(e)) throw e;
        }
      }
    } catch (e) {
      if (!isEcryptfsError(e)) throw e;
    }
  };
  fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => check(FNEK_PREFIX + s)), { numRuns: runs(1000) });
  fc.assert(fc.property(fc.string({ maxLength: 300 }), (s) => check(s)), { numRuns: runs(300) });
  fc.assert(
    fc.property(fc.array(fc.constantFrom(...alphabet), { maxLength: 300 }), (cs) => check(FNEK_PREFIX + cs.join(''))),
    { numRuns: runs(1000) },
  );
  // Well-formed Tag 70 packets with random bodies: valid-looking names that must still fail typed.
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 17, maxLength: 200 }), (body) => {
      const head = body.length < 192 ? [0x46, body.length] : [0x46, ((body.length - 192) >> 8) + 192, (body.length - 192) & 0xff];
      check(FNEK_PREFIX + encode64(Buffer.concat([Buffer.from(head), body])));
    }),
    { numRuns: runs(1000) },
  );
});
