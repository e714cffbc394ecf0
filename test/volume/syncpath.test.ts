/**
 * The mount's synchronous fast path (EcryptfsFile.readNow/writeNow on a descriptor-based lower
 * file): the same clear bytes and the same lower layout as the asynchronous read()/write(), and
 * it steps aside (undefined) whenever it cannot answer at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import fc from 'fast-check';
import { hasMarker } from '../../src/format/header.js';
import { lowerSizeFor } from '../../src/format/offsets.js';
import { FdLowerFile } from '../../src/lower/at.js';
import { EcryptfsFile, type NewFileParams } from '../../src/volume/file.js';
import { KeyRing } from '../../src/volume/keyring.js';
import { tempDir } from '../helpers/fixtures.js';

const ring = new KeyRing();
const [fileKey] = ring.addPassphraseSync('syncpath-pass');
const params = (xattrMetadata = false): NewFileParams => ({ cipher: 'aes', keyBytes: 16, sigs: [fileKey.sig], filenameEncryption: false, xattrMetadata });
const MAX = 1 << 20;

function lowerFile(path: string, flags: string): FdLowerFile {
  return new FdLowerFile(openSync(path, flags), 64 * 1024, path);
}

/** `body` in a new temporary directory, removed afterwards. */
async function inTempDir(body: (dir: string) => Promise<void>): Promise<void> {
  const dir = tempDir();
  try {
    await body(dir.path);
  } finally {
    dir.cleanup();
  }
}

/** `body` with the open file `f`, closed afterwards. */
async function closing(f: EcryptfsFile, body: (f: EcryptfsFile) => unknown): Promise<void> {
  try {
    await body(f);
  } finally {
    await f.close();
  }
}

test('writeNow/readNow match a model and leave the layout write() leaves (property)', () =>
  inTempDir(async (dir) => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('write' as const), pos: fc.oneof(fc.integer({ min: 0, max: 30000 }), fc.constantFrom(0, 4095, 4096, 4097, 8192)), len: fc.oneof(fc.integer({ min: 1, max: 20000 }), fc.constantFrom(4096, 8192, 12288, 16384)) }),
      fc.record({ kind: fc.constant('read' as const), pos: fc.integer({ min: 0, max: 30000 }), len: fc.integer({ min: 0, max: 20000 }) }),
    );
    let run = 0;
    let fast = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 14 }), async (ops) => {
        const path = join(dir, `f${run++}`);
        let model = Buffer.alloc(0);
        await closing(await EcryptfsFile.createHandle(lowerFile(path, 'wx+'), ring, params()), async (f) => {
          for (const o of ops) {
            if (o.kind === 'read') {
              const got = f.readNow(o.pos, o.len, MAX);
              assert.ok(got, 'an idle file answers a read at once');
              fast++;
              assert.deepEqual(got, model.subarray(Math.min(o.pos, model.length), Math.min(o.pos + o.len, model.length)));
              continue;
            }
            const data = randomBytes(o.len);
            const n = f.writeNow(o.pos, data, MAX);
            // Past the end (a gap to fill with encrypted zeros) only the asynchronous path writes.
            assert.equal(n === undefined, o.pos > model.length);
            if (n === undefined) await f.write(o.pos, data, ring, params());
            else fast++;
            const next = Buffer.alloc(Math.max(model.length, o.pos + data.length));
            model.copy(next);
            data.copy(next, o.pos);
            model = next;
            assert.equal(f.size, model.length);
          }
        });
        assert.equal(statSync(path).size, lowerSizeFor(model.length), 'no sparse or stale lower tail');
        const head = readFileSync(path).subarray(0, 16);
        assert.ok(hasMarker(head));
        assert.equal(Number(head.readBigUInt64BE(0)), model.length, 'size field');
        // Read back through the asynchronous path on a fresh open.
        await closing(await EcryptfsFile.openHandle(lowerFile(path, 'r'), ring, { writable: false }), async (g) => {
          assert.deepEqual(await g.read(0, model.length + 10), model);
        });
      }),
      { numRuns: 60 },
    );
    assert.ok(fast > 100, `the fast path ran (${fast} times)`);
  }));

test('readNow into a scratch buffer: the same bytes as without, as a view into the scratch when the extents fit (property)', () =>
  inTempDir(async (dir) => {
    const path = join(dir, 'scratch');
    // 5 extents and a partial one, so requests cross extent boundaries and the end of the file.
    const model = randomBytes(5 * 4096 + 1234);
    await closing(await EcryptfsFile.createHandle(lowerFile(path, 'wx+'), ring, params()), (f) => f.write(0, model, ring, params()));
    await closing(await EcryptfsFile.openHandle(lowerFile(path, 'r'), ring, { writable: false }), async (f) => {
      const scratch = Buffer.alloc(3 * 4096);
      const edges = fc.constantFrom(0, 1, 4095, 4096, 4097, 8191, 8192, 20479, 20480, 21713, 21714, 30000);
      await fc.assert(
        fc.asyncProperty(fc.oneof(edges, fc.integer({ min: 0, max: 30000 })), fc.oneof(fc.constantFrom(1, 4095, 4096, 4097, 8192, 8193, 12288, 12289), fc.integer({ min: 0, max: 16384 })), async (pos, len) => {
          const want = model.subarray(Math.min(pos, model.length), Math.min(pos + len, model.length));
          scratch.fill(0xee);
          const got = f.readNow(pos, len, MAX, scratch);
          assert.ok(got);
          assert.deepEqual(got, want);
          assert.deepEqual(f.readNow(pos, len, MAX), want, 'without a scratch');
          assert.deepEqual(await f.read(pos, len), want, 'the asynchronous path');
          const first = Math.floor(pos / 4096);
          const extents = want.length === 0 ? 0 : Math.floor((pos + want.length - 1) / 4096) - first + 1;
          if (want.length > 0) assert.equal(got.buffer === scratch.buffer, extents * 4096 <= scratch.length, `view into the scratch for ${extents} extents`);
        }),
        { numRuns: 300 },
      );
    });
  }));

test('writeNow of whole extents leaves the caller\'s buffer as it was, and the lower bytes write() leaves', () =>
  inTempDir(async (dir) => {
    const es = 4096;
    const model = randomBytes(64 * es + 100);
    const a = join(dir, 'a'), b = join(dir, 'b');
    await closing(await EcryptfsFile.createHandle(lowerFile(a, 'wx+'), ring, params()), async (f) => {
      await f.write(0, model, ring, params());
      for (const [pos, n] of [[0, 1], [es, 3], [10 * es, 16], [63 * es, 2], [64 * es, 5], [0, 256]] as const) {
        const data = randomBytes(n * es);
        const copy = Buffer.from(data);
        assert.equal(f.writeNow(pos, data, MAX), data.length);
        assert.ok(data.equals(copy), 'the caller\'s buffer is unchanged');
        assert.deepEqual(f.readNow(pos, data.length, MAX), copy);
      }
    });
    // The same writes through write() on a copy of the file: the lower bytes agree.
    writeFileSync(b, readFileSync(a));
    await closing(await EcryptfsFile.openHandle(lowerFile(a, 'r'), ring, { writable: false }), async (f) => {
      const all = await f.read(0, 1 << 21);
      await closing(await EcryptfsFile.openHandle(lowerFile(b, 'r+'), ring, { writable: true }), async (g) => {
        await g.write(0, all, ring, params());
      });
    });
    assert.ok(readFileSync(a).equals(readFileSync(b)), 'lower bytes');
  }));

test('readNow/writeNow step aside while the lock is taken, for big requests, and for the header in the xattr', () =>
  inTempDir(async (dir) => {
    const path = join(dir, 'a');
    await closing(await EcryptfsFile.createHandle(lowerFile(path, 'wx+'), ring, params()), async (f) => {
      assert.equal(f.writeNow(0, Buffer.alloc(10000, 7), MAX), 10000);
      // A read in progress holds the lock as a reader: reads may go on, writes wait for it.
      const reading = f.read(0, 100);
      assert.equal(f.writeNow(0, Buffer.alloc(10, 1), MAX), undefined);
      assert.deepEqual(f.readNow(0, 3, MAX), Buffer.alloc(3, 7));
      await reading;
      // A write in progress: neither.
      const writing = f.write(20000, Buffer.alloc(5, 2), ring, params());
      assert.equal(f.readNow(0, 3, MAX), undefined);
      assert.equal(f.writeNow(0, Buffer.alloc(3, 1), MAX), undefined);
      await writing;
      assert.equal(f.size, 20005);
      // Over the limit it asks for the asynchronous path.
      assert.equal(f.readNow(0, 8192, 4096), undefined);
      assert.equal(f.writeNow(0, Buffer.alloc(8192), 4096), undefined);
    });
    // The header in the xattr (its size field is an xattr write): only the asynchronous path writes.
    const xpath = join(dir, 'x');
    let g: EcryptfsFile;
    try {
      g = await EcryptfsFile.createHandle(lowerFile(xpath, 'wx+'), ring, params(true));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EOPNOTSUPP') return; // no user xattrs here
      throw e;
    }
    await closing(g, async (g) => {
      assert.equal(g.writeNow(0, Buffer.from('abc'), MAX), undefined);
      await g.write(0, Buffer.from('abc'), ring, params(true));
      assert.deepEqual(g.readNow(0, 10, MAX), Buffer.from('abc'));
    });
  }));

test('a lower file shorter than its size field is an error on the fast path too', () =>
  inTempDir(async (dir) => {
    const path = join(dir, 'short');
    const f = await EcryptfsFile.createHandle(lowerFile(path, 'wx+'), ring, params());
    await f.write(0, Buffer.alloc(10000, 1), ring, params());
    await f.close();
    // Cut the last extent off behind the file's back.
    truncateSync(path, 8192 + 8192);
    await closing(await EcryptfsFile.openHandle(lowerFile(path, 'r'), ring, { writable: false }), (g) => {
      assert.deepEqual(g.readNow(0, 4096, MAX), Buffer.alloc(4096, 1));
      assert.throws(() => g.readNow(8000, 2000, MAX), { code: 'ECORRUPT' });
    });
  }));

test('a descriptor label given as a function is built only for a message, once, and names the file in it', () =>
  inTempDir(async (dir) => {
    const path = join(dir, 'not-ecryptfs');
    writeNonEcryptfs(path);
    let built = 0;
    const label = () => {
      built++;
      return `labelled:${path}`;
    };
    const ok = await EcryptfsFile.createHandle(new FdLowerFile(openSync(join(dir, 'new'), 'wx+'), 64 * 1024, label), ring, params());
    await ok.write(0, Buffer.from('hello'), ring, params());
    await ok.close();
    assert.equal(built, 0, 'no message, no label');
    const fh = new FdLowerFile(openSync(path, 'r'), 64 * 1024, label);
    await assert.rejects(EcryptfsFile.openHandle(fh, ring, { writable: false }), (e: Error) => e.message.includes(`labelled:${path}`));
    assert.equal(fh.label, `labelled:${path}`);
    assert.equal(built, 1, 'built once, then kept');
  }));

function writeNonEcryptfs(path: string): void {
  // Not an eCryptfs file: some bytes and no header, so opening it fails with a message.
  writeFileSync(path, Buffer.alloc(100));
}
