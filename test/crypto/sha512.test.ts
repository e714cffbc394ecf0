/** Iterated SHA-512 (the key derivation's core): the OpenSSL path equals node:crypto round by round. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { sha512Rounds } from '../../src/crypto/sha512.js';

function reference(h: Buffer, n: number): Buffer {
  for (let i = 0; i < n; i++) h = createHash('sha512').update(h).digest();
  return h;
}

test('sha512Rounds equals n rounds of node:crypto, and leaves its input as it was', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.integer({ min: 0, max: 300 }), (bytes, n) => {
      const h = Buffer.from(bytes);
      const before = Buffer.from(h);
      assert.deepEqual(sha512Rounds(h, n), reference(Buffer.from(h), n));
      assert.deepEqual(h, before);
    }),
    { numRuns: 200 },
  );
});

test('sha512Rounds refuses what is not a 64-byte digest', () => {
  assert.throws(() => sha512Rounds(Buffer.alloc(63), 1), RangeError);
});
