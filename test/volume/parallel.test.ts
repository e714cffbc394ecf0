/**
 * Large reads and writes go through the crypto pool (shared scratch memory, several threads);
 * what one thread count writes, every other reads back, at aligned and unaligned offsets; the
 * lower bytes do not depend on the thread count, and a lower file cut short is reported on every one.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { isEcryptfsError } from '../../src/errors.js';
import { cryptoPool, setCryptoWorkers } from '../../src/crypto/pool.js';
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

test('the lower bytes are the same whichever threads wrote them; a lower file cut short reads as ECORRUPT on every thread count', async () => {
  const dir = tempDir();
  try {
    // Its own keys: closing a volume wipes its ring.
    const ring2 = new KeyRing();
    const [key2] = ring2.addPassphraseSync('parallel-pass-2');
    const vol = await Volume.open(dir.path, ring2, { cipher: 'aes', keyBytes: 16, sigs: [key2.sig], fnekSig: null });
    const data = bytes(7, (3 << 20) + 1000);
    setCryptoWorkers(0);
    await vol.writeFile('f', data);
    const [name] = readdirSync(dir.path);
    const lowerPath = join(dir.path, name);
    const alone = readFileSync(lowerPath);
    for (const writers of [1, 2]) {
      setCryptoWorkers(writers);
      // Rewritten in place: the same file key, so the same lower bytes.
      await vol.writeFile('f', data);
      assert.ok(readFileSync(lowerPath).equals(alone), `${writers} crypto threads wrote other lower bytes`);
    }
    // Cut (after the 8 KiB header) inside the calling thread's share of a 1 MiB chunk (its first
    // 1/2 or 1/3) and inside a worker's, at and off an extent edge.
    for (const [chunk, extent] of [[0, 50], [0, 200], [2, 240]]) {
      const cut = 8192 + (chunk * 256 + extent) * 4096 + (extent === 200 ? 100 : 0);
      writeFileSync(lowerPath, alone.subarray(0, cut));
      for (const readers of [0, 1, 2]) {
        setCryptoWorkers(readers);
        // Just the 1 MiB chunk with the cut (one batch: later small batches would notice on their own).
        const f = await vol.openFile('f');
        try {
          await assert.rejects(f.read(chunk << 20, 1 << 20), (e: unknown) => isEcryptfsError(e, 'ECORRUPT'), `cut at ${cut}, ${readers} threads`);
        } finally {
          await f.close();
        }
      }
    }
    writeFileSync(lowerPath, alone);
    for (const readers of [0, 1, 2]) {
      setCryptoWorkers(readers);
      assert.ok((await vol.readFile('f')).equals(data));
    }
    vol.close();
  } finally {
    dir.cleanup();
  }
});

/**
 * `fn` on a fresh volume with its own keys (closing a volume wipes its ring), while the crypto
 * pool's jobs of kind `op` are watched: the shared buffers they were sent.
 */
async function withWatchedPool(op: 'encrypt' | 'decrypt', pass: string, fn: (vol: Volume, sent: Set<SharedArrayBuffer>) => Promise<void>): Promise<void> {
  const dir = tempDir();
  const pool = cryptoPool();
  const run = pool.run.bind(pool);
  const sent = new Set<SharedArrayBuffer>();
  pool.run = (job) => {
    if (job.op === op) sent.add(job.buf);
    return run(job);
  };
  try {
    const own = new KeyRing();
    const [k] = own.addPassphraseSync(pass);
    const vol = await Volume.open(dir.path, own, { cipher: 'aes', keyBytes: 16, sigs: [k.sig], fnekSig: null });
    try {
      await fn(vol, sent);
    } finally {
      vol.close();
    }
  } finally {
    pool.run = run;
    setCryptoWorkers(undefined);
    dir.cleanup();
  }
}

test('writes of many files share a few scratch buffers: the crypto pool is sent the same shared memory again, not one per file', async () => {
  await withWatchedPool('encrypt', 'parallel-pass-3', async (vol, sent) => {
    setCryptoWorkers(1);
    const files = 24;
    for (let i = 0; i < files; i++) {
      // Two files at a time, each with 1 MiB writes (large enough for the pool's threads); a new
      // start of the pool's choice, so that the next batch is spread.
      setCryptoWorkers(1);
      await Promise.all([0, 1].map(async (k) => {
        const f = await vol.createFile(`f${i}-${k}`);
        try {
          await f.write(0, bytes(i * 2 + k, 2 << 20));
        } finally {
          await f.close();
        }
      }));
    }
    for (let i = 0; i < files; i += 7) assert.ok((await vol.readFile(`f${i}-1`)).equals(bytes(i * 2 + 1, 2 << 20)));
    assert.ok(sent.size > 0, 'the pool encrypted shares of the writes');
    assert.ok(sent.size <= 8, `${sent.size} scratch buffers for ${2 * files} files`);
  });
});

test('reads of many files share a few scratch buffers with the crypto pool, and the clear bytes in them are wiped', async () => {
  await withWatchedPool('decrypt', 'parallel-pass-4', async (vol, sent) => {
    const files = 20;
    const data = Buffer.alloc(2 << 20, 0x5a);
    for (let i = 0; i < files; i++) await vol.writeFile(`f${i}`, data);
    for (let i = 0; i < files; i += 2) {
      setCryptoWorkers(1); // a new start of the pool's choice: the next batch is spread
      const got = await Promise.all([vol.readFile(`f${i}`), vol.readFile(`f${i + 1}`)]);
      for (const g of got) assert.ok(g.equals(data));
    }
    assert.ok(sent.size > 0, 'the pool decrypted shares of the reads');
    assert.ok(sent.size <= 4, `${sent.size} scratch buffers for ${files} files`);
    for (const b of sent) assert.equal(Buffer.from(b).indexOf(0x5a), -1, 'no clear byte left in a scratch');
  });
});
