/**
 * The header prefetch worker (src/mount/fs/prefetch.ts): it only warms the page cache, so what a
 * test can hold it to is safety: every batch ends, every descriptor it was given or opened is
 * closed, and names that are not regular files (a FIFO, a symlink, a directory, a name gone) are
 * passed over without blocking or following.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, constants as C, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statfsSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EcryptfsFs, ROOT } from '../../src/mount/fs.js';
import { HeaderPrefetch } from '../../src/mount/fs/prefetch.js';
import { KeyRing } from '../../src/volume/keyring.js';
import { Volume } from '../../src/volume/volume.js';
import { AT_FDCWD, O_PATH, openat } from '../../src/lower/sys.js';
import { tempDir } from '../helpers/fixtures.js';

const openFds = () => readdirSync('/proc/self/fd').length;

async function drained(p: HeaderPrefetch): Promise<void> {
  for (let i = 0; i < 500 && p.pending() > 0; i++) await new Promise((r) => setTimeout(r, 10));
}

test('prefetch batches end, close every descriptor and pass over what is not a regular file', async () => {
  const dir = tempDir();
  const outside = tempDir();
  const p = new HeaderPrefetch();
  try {
    const names: Buffer[] = [];
    for (let i = 0; i < 20; i++) {
      writeFileSync(join(dir.path, `f${i}`), Buffer.alloc(9000, i));
      names.push(Buffer.from(`f${i}`));
    }
    writeFileSync(join(outside.path, 'secret'), 'x');
    symlinkSync(join(outside.path, 'secret'), join(dir.path, 'link'));
    mkdirSync(join(dir.path, 'sub'));
    writeFileSync(join(dir.path, 'empty'), '');
    const fifo = spawnSync('mkfifo', [join(dir.path, 'fifo')]).status === 0;
    names.push(Buffer.from('link'), Buffer.from('sub'), Buffer.from('empty'), Buffer.from('gone'), ...(fifo ? [Buffer.from('fifo')] : []));
    const d = openat(AT_FDCWD, dir.path, O_PATH | 0o200000);
    try {
      // The worker starts with the first batch (its thread has descriptors of its own).
      p.hint(d, names.slice(0, 1));
      await drained(p);
      const before = openFds();
      p.hint(d, names);
      p.hint(d, names.slice(0, 3));
      assert.ok(p.pending() > 0 && p.pending() <= 2);
      await drained(p);
      assert.equal(p.pending(), 0, 'both batches done (the FIFO did not block the worker)');
      // The directory handles it was given and the files it opened are all closed.
      assert.equal(openFds(), before);
    } finally {
      closeSync(d);
    }
  } finally {
    p.close();
    dir.cleanup();
    outside.cleanup();
  }
});

test('prefetch refuses work past its bounds instead of queueing it', async () => {
  const dir = tempDir();
  const p = new HeaderPrefetch();
  try {
    const d = openat(AT_FDCWD, dir.path, O_PATH | 0o200000);
    try {
      const many = Array.from({ length: 9000 }, (_, i) => Buffer.from(`n${i}`));
      p.hint(d, many);
      assert.equal(p.pending(), 0, 'more names than the queue holds: not sent');
      for (let i = 0; i < 100; i++) p.hint(d, [Buffer.from('a'), Buffer.from('b')]);
      assert.ok(p.pending() <= 64, `at most 64 batches queued, ${p.pending()} were`);
      await drained(p);
    } finally {
      closeSync(d);
    }
  } finally {
    p.close();
    dir.cleanup();
  }
});

/** Whether a directory's filesystem keeps its pages in memory (tmpfs, ramfs: nothing to prefetch). */
const inMemory = (path: string) => [0x01021994, 0x858458f6].includes(statfsSync(path).type);

for (const where of ['temp', 'shm'] as const) test(`a listing of files whose sizes this daemon has not seen hands them to the prefetch, unless the lower is in memory (${where}); seen ones are not`, async (t) => {
  if (where === 'shm' && !(existsSync('/dev/shm') && inMemory('/dev/shm'))) return t.skip('no tmpfs at /dev/shm');
  const dir = where === 'temp' ? tempDir() : { path: mkdtempSync('/dev/shm/ecryptfs-prefetch-'), cleanup() { rmSync(this.path, { recursive: true, force: true }); } };
  try {
    const ring = new KeyRing();
    const [k, f] = await ring.addPassphrase('prefetch-pass');
    const vol = await Volume.open(dir.path, ring, { sigs: [k.sig], fnekSig: f.sig });
    const writer = new EcryptfsFs(vol);
    for (let i = 0; i < 10; i++) {
      const { fh } = await writer.create(ROOT, `f${i}`, 0o100644, C.O_RDWR | C.O_CREAT);
      await writer.write(fh, 0, Buffer.alloc(100 + i, 1));
      await writer.release(fh);
    }
    const sent = (fs: EcryptfsFs) => (fs as unknown as { prefetch: { sentNames: number } }).prefetch.sentNames;
    assert.equal((await writer.readdir(ROOT)).length, 10);
    assert.equal(sent(writer), 0, 'sizes known from the writes: nothing to prefetch');
    const fresh = new EcryptfsFs(vol);
    assert.equal((await fresh.readdir(ROOT)).length, 10);
    assert.equal(sent(fresh), inMemory(dir.path) ? 0 : 10);
    for (let i = 0; i < 10; i++) assert.equal(fresh.lookupSync(ROOT, `f${i}`).attr.size, 100 + i);
    await fresh.closeAll();
    await writer.closeAll();
    vol.close();
  } finally {
    dir.cleanup();
  }
});
