/** The 740-byte keyring payload (ECRYPTFS-FORMAT §9, CORPUS-RULES §1). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { isEcryptfsError } from '../../src/errors.js';
import { AUTH_TOK_SIZE, buildAuthTok, parseAuthTok } from '../../src/format/authtok.js';
import { FNEK_SALT, DEFAULT_SALT } from '../../src/format/kdf.js';

test('auth token: documented offsets and values', () => {
  const key = randomBytes(64);
  const t = buildAuthTok(key, '33a5d5e39463d53f', FNEK_SALT);
  assert.equal(t.length, AUTH_TOK_SIZE);
  assert.equal(t.readUInt16LE(0), 0x0004);
  assert.equal(t.readUInt16LE(2), 0); // passphrase token
  assert.equal(t.readInt32LE(632), 10); // PGP SHA-512, informational
  assert.equal(t.readUInt32LE(640), 64);
  assert.equal(t.readUInt32LE(644), 0x02);
  assert.deepEqual(t.subarray(648, 712), key);
  assert.equal(t.subarray(712, 729).toString('latin1'), '33a5d5e39463d53f\0');
  assert.equal(t.subarray(729, 737).toString('latin1'), '99887766');
  // Everything else is zero (session_key, reserved, padding).
  const rest = Buffer.from(t);
  rest.fill(0, 0, 4);
  rest.fill(0, 632, 737);
  assert.ok(rest.every((x) => x === 0));
  assert.deepEqual(parseAuthTok(t), { key, sig: '33a5d5e39463d53f', salt: FNEK_SALT });
});

test('auth token: parse rejects wrong size, version, type; build rejects bad fields', () => {
  const good = buildAuthTok(randomBytes(64), '0123456789abcdef', DEFAULT_SALT);
  const mutate = (f: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(good);
    f(b);
    return b;
  };
  assert.throws(() => parseAuthTok(good.subarray(0, 739)), (e: unknown) => isEcryptfsError(e, 'ECORRUPT'));
  assert.throws(() => parseAuthTok(Buffer.concat([good, Buffer.alloc(1)])), (e: unknown) => isEcryptfsError(e, 'ECORRUPT'));
  assert.throws(() => parseAuthTok(mutate((b) => b.writeUInt16LE(0x0003, 0))), (e: unknown) => isEcryptfsError(e, 'EUNSUPPORTED'));
  assert.throws(() => parseAuthTok(mutate((b) => b.writeUInt16LE(1, 2))), (e: unknown) => isEcryptfsError(e, 'EUNSUPPORTED'));
  assert.throws(() => parseAuthTok(mutate((b) => b.writeUInt16LE(7, 2))), (e: unknown) => isEcryptfsError(e, 'ECORRUPT'));
  assert.throws(() => parseAuthTok(mutate((b) => b.writeUInt32LE(32, 640))), (e: unknown) => isEcryptfsError(e, 'ECORRUPT'));
  assert.throws(() => parseAuthTok(mutate((b) => b.writeUInt32LE(0, 644))), (e: unknown) => isEcryptfsError(e, 'ECORRUPT'));
  assert.throws(() => parseAuthTok(mutate((b) => (b[712] = 0x47))), (e: unknown) => isEcryptfsError(e, 'ECORRUPT'));
  assert.throws(() => buildAuthTok(randomBytes(32), '0123456789abcdef', DEFAULT_SALT), (e: unknown) => isEcryptfsError(e, 'EINVAL'));
  assert.throws(() => buildAuthTok(randomBytes(64), '0123', DEFAULT_SALT), (e: unknown) => isEcryptfsError(e, 'EINVAL'));
  assert.throws(() => buildAuthTok(randomBytes(64), '0123456789abcdef', Buffer.alloc(7)), (e: unknown) => isEcryptfsError(e, 'EINVAL'));
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 0, maxLength: 800 }), (b) => {
      try {
        parseAuthTok(b);
      } catch (e) {
        if (!isEcryptfsError(e)) throw e;
      }
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 500) },
  );
});
