/** Private.sig and ALIAS.sig are read by one parser, as mount.ecryptfs_private's fetch_sig reads them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseSigFile } from '../../src/volume/keysource.js';
import { isEcryptfsError } from '../../src/errors.js';

const A = '0123456789abcdef';
const B = 'fedcba9876543210';
const corrupt = (re: RegExp) => (e: unknown) => isEcryptfsError(e, 'ECORRUPT') && re.test((e as Error).message);

test('the first line is the file key\'s sig, the second the FNEK\'s; each is cut at its first blank', () => {
  assert.deepEqual(parseSigFile(`${A}\n`), [A]);
  assert.deepEqual(parseSigFile(`${A}\n${B}\n`), [A, B]);
  assert.deepEqual(parseSigFile(`${A}`), [A]);
  assert.deepEqual(parseSigFile(`  ${A} trailing words\r\n${B}\tx\n`), [A, B]);
  assert.deepEqual(parseSigFile(`${A}\n\n`), [A], 'an empty second line: names are not encrypted');
  // fetch_sig takes upper-case hex (isxdigit); the keyring names keys in lower case
  assert.deepEqual(parseSigFile(`${A.toUpperCase()}\n${B.toUpperCase()}\n`), [A, B]);
  // fetch_sig reads two lines and no more
  assert.deepEqual(parseSigFile(`${A}\n${B}\nanything at all\n`), [A, B]);
});

test('a missing or malformed sig is refused, naming the file', () => {
  assert.throws(() => parseSigFile('', '/h/.ecryptfs/vault.sig'), (e: unknown) => corrupt(/Missing file encryption signature/)(e) && (e as Error).message.includes('/h/.ecryptfs/vault.sig'));
  assert.throws(() => parseSigFile(`\n${A}\n`), corrupt(/Missing file encryption signature/));
  assert.throws(() => parseSigFile('deadbeef\n'), corrupt(/not a key signature: "deadbeef"/));
  assert.throws(() => parseSigFile(`${A}\nnot-a-sig\n`), corrupt(/not a key signature: "not-a-sig"/));
  assert.throws(() => parseSigFile(`${A}0\n`), corrupt(/not a key signature/));
  assert.throws(() => parseSigFile('0123456789abcdeg\n'), corrupt(/not a key signature/));
});

test('whatever the text, the result is one or two lower-case 16-hex-digit sigs or ECORRUPT', () => {
  fc.assert(fc.property(fc.string({ maxLength: 60 }), fc.constantFrom('', A, B.toUpperCase()), (junk, sig) => {
    const text = sig + junk;
    try {
      const sigs = parseSigFile(text);
      assert.ok(sigs.length === 1 || sigs.length === 2);
      for (const s of sigs) assert.match(s, /^[0-9a-f]{16}$/);
    } catch (e) {
      assert.ok(isEcryptfsError(e, 'ECORRUPT'), String(e));
    }
  }), { numRuns: 2000 });
});
