/**
 * The mount's READ/WRITE paths (fs layer, no FUSE): one caller is answered synchronously (a value,
 * not a promise, so the FUSE server keeps its blocking-read loop); several callers at once take
 * the asynchronous path; both give the same bytes; errors are rejections either way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants as C } from 'node:fs';
import { constants as OSC } from 'node:os';
import { randomBytes } from 'node:crypto';
import { isPromise } from '../../src/fuse/operations.js';
import { EcryptfsFs, ErrnoError, ROOT } from '../../src/mount/fs.js';
import { KeyRing } from '../../src/volume/keyring.js';
import { Volume } from '../../src/volume/volume.js';
import { tempDir } from '../helpers/fixtures.js';
import { READ_BUFFERS_MAX } from '../../src/mount/fs/file-ops.js';

const caller = (pid: number) => ({ uid: 0, gid: 0, pid });

/** A fresh volume's filesystem with one file 'f' open read-write; the directory goes afterwards. */
async function withFile(fn: (fs: EcryptfsFs, fh: number) => Promise<void>): Promise<void> {
  const dir = tempDir();
  try {
    const ring = new KeyRing();
    const [k] = await ring.addPassphrase('dataio-pass');
    const vol = await Volume.open(dir.path, ring, { sigs: [k.sig], fnekSig: null });
    const fs = new EcryptfsFs(vol);
    const { fh } = await fs.create(ROOT, 'f', 0o100644, C.O_RDWR | C.O_CREAT);
    await fn(fs, fh);
  } finally {
    dir.cleanup();
  }
}

test('one caller is served without a promise; callers at once take the asynchronous path with the same bytes', async () => {
  await withFile(async (fs, fh) => {
    const data = randomBytes(300000);
    // One process: every request answered at once.
    for (let pos = 0; pos < data.length; pos += 65536) {
      const n = fs.write(fh, pos, data.subarray(pos, pos + 65536), caller(100));
      assert.ok(!isPromise(n), 'a single writer is answered synchronously');
      assert.equal(n, Math.min(65536, data.length - pos));
    }
    const r = fs.read(fh, 1000, 60000, caller(100));
    assert.ok(!isPromise(r), 'a single reader is answered synchronously');
    assert.deepEqual(r, data.subarray(1000, 61000));
    // Two processes interleaving: the asynchronous path, the same contents.
    const a = fs.read(fh, 5, 4096, caller(101));
    assert.ok(isPromise(a), 'a second caller at the same time goes asynchronous');
    assert.deepEqual(await a, data.subarray(5, 4101));
    const w = fs.write(fh, 4096, Buffer.alloc(10, 9), caller(100));
    assert.ok(isPromise(w));
    assert.equal(await w, 10);
    data.fill(9, 4096, 4106);
    assert.deepEqual(await fs.read(fh, 0, data.length + 100, caller(101)), data);
    // Errors are rejections, not throws (a bad handle), on either path.
    const bad = (e: unknown) => e instanceof ErrnoError && e.errno === OSC.errno.EBADF;
    const rd = fs.read(9999, 0, 10, caller(100));
    assert.ok(isPromise(rd));
    await assert.rejects(rd as Promise<Buffer>, bad);
    await assert.rejects(fs.write(9999, 0, Buffer.from('x'), caller(101)) as Promise<number>, bad);
    await fs.release(fh);
    await fs.closeAll();
  });
});

test('readReply: a synchronous answer is a view into one reused buffer, an asynchronous one a buffer readDone gives back; read() answers stay the caller\'s own', async () => {
  await withFile(async (fs, fh) => {
    const data = randomBytes(200000);
    await fs.write(fh, 0, data, caller(100));
    const a = fs.readReply(fh, 4095, 4098, caller(100));
    assert.ok(!isPromise(a), 'answered synchronously');
    assert.deepEqual(a, data.subarray(4095, 8193));
    const b = fs.readReply(fh, 70000, 65536, caller(100));
    assert.ok(!isPromise(b));
    assert.equal((b as Buffer).buffer, (a as Buffer).buffer, 'the same buffer again');
    assert.deepEqual(b, data.subarray(70000, 135536));
    // Over the synchronous limit: the asynchronous path, a buffer of its own, the same bytes.
    const big = fs.readReply(fh, 1, 100000, caller(100));
    assert.ok(isPromise(big));
    const got = await big;
    assert.notEqual(got.buffer, (a as Buffer).buffer);
    assert.deepEqual(got, data.subarray(1, 100001));
    // Once the server says the answer was written, its buffer serves the next asynchronous READ.
    const other = fs.readReply(fh, 3, 150000, caller(100));
    assert.notEqual((await other).buffer, got.buffer, 'not while the first is still being written');
    fs.readDone(got);
    const again = await fs.readReply(fh, 50000, 150000, caller(100));
    assert.equal(again.buffer, got.buffer, 'the written one again');
    assert.deepEqual(again, data.subarray(50000, 200000));
    assert.deepEqual(await fs.readReply(fh, 199990, 100000, caller(100)), data.subarray(199990), 'short at the end of the file');
    // read() never hands out the reused buffer: earlier answers keep their bytes.
    const c = fs.read(fh, 0, 4096, caller(100)) as Buffer;
    const d = fs.read(fh, 8192, 4096, caller(100)) as Buffer;
    assert.notEqual(c.buffer, (a as Buffer).buffer);
    assert.deepEqual(c, data.subarray(0, 4096));
    assert.deepEqual(d, data.subarray(8192, 12288));
    await fs.release(fh);
    await fs.closeAll();
  });
});

test('at most READ_BUFFERS_MAX asynchronous READ buffers: one more READ waits for a buffer readDone gives back', async () => {
  await withFile(async (fs, fh) => {
    const data = randomBytes(1 << 20);
    await fs.write(fh, 0, data, caller(100));
    const size = 100000; // over the synchronous limit
    const at = (i: number) => (i * 4099) % (data.length - size);
    const first = await Promise.all([...Array(READ_BUFFERS_MAX).keys()].map((i) => fs.readReply(fh, at(i), size, caller(100))));
    assert.equal(new Set(first.map((b) => b.buffer)).size, READ_BUFFERS_MAX, 'each its own buffer');
    first.forEach((b, i) => assert.deepEqual(b, data.subarray(at(i), at(i) + size)));
    const extra = fs.readReply(fh, 7, size, caller(100));
    assert.ok(isPromise(extra));
    const early = await Promise.race([extra, new Promise((r) => setTimeout(r, 50, 'waiting'))]);
    assert.equal(early, 'waiting', 'no buffer is free: the READ waits');
    fs.readDone(first[3]);
    const got = await extra;
    assert.equal(got.buffer, first[3].buffer, 'the buffer given back');
    assert.deepEqual(got, data.subarray(7, 7 + size));
    for (const b of first) if (b !== first[3]) fs.readDone(b);
    fs.readDone(got);
    await fs.release(fh);
    await fs.closeAll();
  });
});
