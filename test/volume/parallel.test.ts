/**
 * Large reads and writes go through the crypto pool (shared scratch memory, several threads);
 * what one thread count writes, every other reads back, at aligned and unaligned offsets.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { setCryptoWorkers } from '../../src/crypto/pool.js';
import { KeyRing } from '../../src/volume/keyring.js';
import { Volume } from '../../src/volume/volume.js';
import { tempDir } from '../helpers/fixtures.js';
import { seededBytes } from '../helpers/prng.js';

const ring = new KeyRing();
const [fileKey] = ring.addPassphraseSync('parallel-pass');
after(() => setCryptoWorkers(undefined));

const bytes = seededBytes;

test('writes and reads with 0, 1 and 2 crypto threads agree, aligned and not', async () => {
  const dir = tempDir();
  try {
    const vol = await Volume.open(dir.path, ring, { cipher: 'aes', keyBytes: 16, sigs: [fileKey.sig], fnekSig: null });
    await fc.assert(fc.asyncProperty(
      fc.integer(),
      fc.integer({ min: 0, max: 2 }),
      fc.integer({ min: 0, max: 2 }),
      fc.integer({ min: 0, max: 3 << 20 }),
      fc.integer({ min: 1, max: 3 << 20 }),
      async (seed, writers, readers, pos, len) => {
        const model = bytes(seed, 2 << 20);
        setCryptoWorkers(writers);
        await vol.writeFile('f', model);
        const data = bytes(seed + 1, len);
        const f = await vol.openFile('f', { write: true });
        try {
          await f.write(pos, data);
        } finally {
          await f.close();
        }
        const want = Buffer.alloc(Math.max(model.length, pos + len));
        model.copy(want);
        data.copy(want, pos);
        setCryptoWorkers(readers);
        assert.ok((await vol.readFile('f')).equals(want), 'whole file');
        const g = await vol.openFile('f');
        try {
          const at = Math.floor(want.length / 3) + (seed & 4095);
          const part = await g.read(at, 1 << 20);
          assert.ok(part.equals(want.subarray(at, at + (1 << 20))), 'unaligned 1 MiB read');
        } finally {
          await g.close();
        }
      },
    ), { numRuns: 12 });
    vol.close();
  } finally {
    dir.cleanup();
  }
});
