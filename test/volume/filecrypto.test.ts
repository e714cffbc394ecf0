/**
 * A file's extent crypto spread over the crypto pool (src/volume/filecrypto.ts) against the same
 * extents done on the calling thread: shared and plain buffers, 0-2 worker threads, every cipher.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { hasLegacyProvider } from '../../src/crypto/blockcipher.js';
import { evpAvailable } from '../../src/crypto/evp.js';
import { setCryptoWorkers, sharedBuffer } from '../../src/crypto/pool.js';
import type { CipherName } from '../../src/crypto/types.js';
import { FileCrypto } from '../../src/volume/filecrypto.js';
import { seededBytes } from '../helpers/prng.js';

after(() => setCryptoWorkers(undefined));

const bytes = seededBytes;
const KEY: Record<CipherName, number> = { aes: 16, des3_ede: 24, blowfish: 16, cast5: 16, twofish: 32, cast6: 24 };
const ALL = Object.keys(KEY) as CipherName[];
/** Ciphers slow enough (pure TypeScript, or 3DES) to get fewer and smaller cases. */
const slow = (n: CipherName) => n !== 'aes' && !(n === 'blowfish' || n === 'cast5');
const legacy = (n: CipherName) => (n === 'blowfish' || n === 'cast5') && !hasLegacyProvider();

for (const name of ALL) {
  test(`${name}: the crypto pool's parallel paths equal the calling thread's`, { skip: legacy(name) ? 'no legacy provider' : false }, async () => {
    const js = slow(name);
    await fc.assert(fc.asyncProperty(
      fc.integer(),
      fc.integer({ min: 0, max: 2 }),
      fc.integer({ min: 0, max: 1_000_000 }),
      // Below, at and well above the 64-extent threshold.
      fc.oneof(fc.integer({ min: 1, max: 70 }), fc.integer({ min: 64, max: js ? 80 : 300 })),
      fc.boolean(),
      fc.boolean(),
      async (seed, workers, first, count, shared, intoShared) => {
        setCryptoWorkers(workers);
        const cc = new FileCrypto(name, bytes(seed, KEY[name]));
        const es = cc.extentSize;
        const data = bytes(seed + 1, count * es);
        const want = Buffer.alloc(data.length);
        cc.encrypt(data, want, first, count);

        const buf = shared ? sharedBuffer(data.length) : Buffer.alloc(data.length);
        buf.set(data);
        await cc.encryptInPlace(buf, first, count);
        assert.ok(buf.equals(want), 'encryptInPlace');

        // From a caller's buffer into another (a write's scratch), pool state afresh so a large batch spreads.
        setCryptoWorkers(workers);
        const from = shared ? sharedBuffer(data.length) : Buffer.alloc(data.length);
        from.set(data);
        const into = intoShared ? sharedBuffer(data.length) : Buffer.alloc(data.length);
        await cc.encryptInto(from, into, first, count);
        assert.ok(into.equals(want), 'encryptInto');
        assert.ok(from.equals(data), 'encryptInto leaves its source as it was');

        const back = Buffer.alloc(data.length);
        const src = shared ? sharedBuffer(data.length) : Buffer.alloc(data.length);
        src.set(want);
        await cc.decryptFrom(src, back, first, count);
        assert.ok(back.equals(data), 'decryptFrom');

        await cc.decryptInPlace(buf, first, count);
        assert.ok(buf.equals(data), 'decryptInPlace');
        cc.destroy();
      },
    ), { numRuns: js ? 6 : 25 });
  });
}

test('many concurrent parallel jobs on one file cipher stay separate', async () => {
  setCryptoWorkers(2);
  const cc = new FileCrypto('aes', bytes(1, 16));
  const es = cc.extentSize;
  const runs = Array.from({ length: 6 }, (_, i) => ({ first: i * 1000, data: bytes(i + 10, 100 * es) }));
  const outs = await Promise.all(runs.map(async (r) => {
    const b = Buffer.from(r.data);
    await cc.encryptInPlace(b, r.first, 100);
    return b;
  }));
  runs.forEach((r, i) => {
    const want = Buffer.alloc(r.data.length);
    cc.encrypt(r.data, want, r.first, 100);
    assert.ok(outs[i].equals(want), `run ${i}`);
  });
});

test('a destroyed cipher refuses work instead of reaching freed OpenSSL state; workers forget keys', async () => {
  setCryptoWorkers(1);
  const cc = new FileCrypto('aes', bytes(2, 16));
  const buf = sharedBuffer(256 * cc.extentSize);
  await cc.encryptInPlace(buf, 0, 256);
  cc.destroy();
  if (evpAvailable()) assert.throws(() => cc.decrypt(buf, buf, 0, 1), /destroyed/);
  // The pool still serves other files after the forget message.
  const other = new FileCrypto('aes', bytes(3, 16));
  const data = bytes(4, 256 * other.extentSize);
  const want = Buffer.alloc(data.length);
  other.encrypt(data, want, 7, 256);
  const b = Buffer.from(data);
  await other.encryptInPlace(b, 7, 256);
  assert.ok(b.equals(want));
  other.destroy();
});
