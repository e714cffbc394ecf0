/**
 * FORGET (and BATCH_FORGET, which the server turns into one forget per item) must release all a
 * node holds: the kernel can hold every file of a huge directory and drops them under memory
 * pressure, and the daemon's memory has to follow. Also the per-inode clear-size cache, which
 * outlives nodes on purpose, stays bounded and is dropped when its inode may be reused.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants as C, readdirSync } from 'node:fs';
import { constants as OSC } from 'node:os';
import { ErrnoError, ROOT } from '../../src/mount/fs.js';
import { ClearSizes } from '../../src/mount/fs/sizes.js';
import { withFreshFs } from './fresh-fs.js';

const stale = (e: unknown) => e instanceof ErrnoError && e.errno === OSC.errno.ESTALE;
const openFds = () => readdirSync('/proc/self/fd').length;


test('forget releases a node, its inode key and its directory descriptor; partial forgets keep it', async () => {
  await withFreshFs(async ({ fs }) => {
    const d = await fs.mkdir(ROOT, 'd', 0o755);
    const files: number[] = [];
    for (let i = 0; i < 20; i++) {
      const { entry, fh } = await fs.create(d.nodeid, `f${i}`, 0o100644, C.O_RDWR | C.O_CREAT);
      await fs.write(fh, 0, Buffer.from(`file ${i}`));
      await fs.release(fh);
      files.push(entry.nodeid);
    }
    await fs.link(files[0], ROOT, 'hard');
    const start = fs.tables();
    assert.equal(start.nodes, 1 + 1 + 20, 'root, d and the files');
    assert.equal(start.inodes, 1 + 20, 'd and the files by inode (the root is not looked up)');
    // Looked up again: the kernel now holds two references to each; state per node is filled.
    for (let i = 0; i < 20; i++) {
      assert.equal(fs.lookupSync(d.nodeid, `f${i}`).nodeid, files[i]);
      assert.throws(() => fs.getxattrSync(files[i], 'security.capability'));
    }
    fs.getattrSync(d.nodeid);
    assert.equal(fs.tables().dirFds, 1, "d's descriptor is cached");
    const fdsWithDir = openFds();

    // One reference of two forgotten: nothing goes.
    for (const id of files) fs.forget(id, 1);
    assert.equal(fs.tables().nodes, 22);
    assert.equal(fs.getattrSync(files[3]).size, 6);
    // The rest, as a BATCH_FORGET delivers it (files[0] also has the reference link gave).
    for (const id of files) fs.forget(id, id === files[0] ? 2 : 1);
    const after = fs.tables();
    assert.equal(after.nodes, 2, 'root and d are left');
    assert.equal(after.inodes, 1, "only d's inode is still keyed");
    for (const id of files) assert.throws(() => fs.getattrSync(id), stale, 'a forgotten node id is stale');
    // The directory: its descriptor is closed with it.
    fs.forget(d.nodeid, 1);
    assert.deepEqual([fs.tables().nodes, fs.tables().inodes, fs.tables().dirFds], [1, 0, 0]);
    assert.equal(openFds(), fdsWithDir - 1, "d's lower descriptor is closed");
    assert.throws(() => fs.getattrSync(d.nodeid), stale);
    // Looked up again, a file is a new node with nothing left from the old one.
    const d2 = fs.lookupSync(ROOT, 'd');
    assert.notEqual(d2.nodeid, d.nodeid);
    const again = fs.lookupSync(d2.nodeid, 'f0');
    assert.ok(!files.includes(again.nodeid));
    assert.equal(again.attr.size, 6);
    assert.equal(again.attr.nlink, 2);
    // forget of an unknown or the root node changes nothing.
    fs.forget(12345, 1);
    fs.forget(ROOT, 100);
    assert.equal(fs.getattrSync(ROOT).ino > 0, true);
    assert.equal(fs.tables().nodes, 3);
  });
});

test('a node forgotten while open lives until its last release, then goes', async () => {
  await withFreshFs(async ({ fs }) => {
    const { entry, fh } = await fs.create(ROOT, 'open.txt', 0o100644, C.O_RDWR | C.O_CREAT);
    await fs.write(fh, 0, Buffer.from('still here'));
    fs.forget(entry.nodeid, 1);
    assert.equal(fs.tables().nodes, 2, 'kept while open');
    assert.equal((await fs.read(fh, 0, 100)).toString(), 'still here');
    await fs.release(fh);
    assert.deepEqual([fs.tables().nodes, fs.tables().inodes, fs.tables().open], [1, 0, 0]);
    assert.throws(() => fs.getattrSync(entry.nodeid), stale);
  });
});

test('the clear-size cache outlives forget, is bounded, and drops an unlinked inode', async () => {
  await withFreshFs(async ({ fs }) => {
    const { entry, fh } = await fs.create(ROOT, 'a', 0o100644, C.O_RDWR | C.O_CREAT);
    await fs.write(fh, 0, Buffer.from('12345'));
    await fs.release(fh);
    assert.equal(fs.tables().clearSizes, 1, 'kept when the file closed');
    assert.equal(fs.lookupSync(ROOT, 'a').attr.size, 5);
    fs.forget(entry.nodeid, 2);
    assert.equal(fs.tables().nodes, 1);
    assert.equal(fs.tables().clearSizes, 1, 'kept for the next (cold) lookup');
    await fs.unlink(ROOT, 'a');
    assert.equal(fs.tables().clearSizes, 0, 'gone with its file: the inode number may be reused');
  });
});

test('ClearSizes: answers only for the same lower size and ctime, holds at most its capacity', () => {
  const c = new ClearSizes(4);
  c.set(1, 8192, 10n, 3);
  assert.equal(c.get(1, 8192, 10n), 3);
  assert.equal(c.get(1, 8192, 11n), undefined, 'ctime moved');
  assert.equal(c.get(1, 12288, 10n), undefined, 'size moved');
  c.set(1, 12288, 11n, 5000);
  assert.equal(c.get(1, 12288, 11n), 5000, 'updated in place');
  assert.equal(c.count, 1);
  for (let i = 2; i <= 9; i++) c.set(i, 8192, BigInt(i), i);
  assert.equal(c.count, 4, 'the oldest entries gave way');
  assert.equal(c.get(1, 12288, 11n), undefined);
  for (let i = 6; i <= 9; i++) assert.equal(c.get(i, 8192, BigInt(i)), i);
  c.set('7:1', 8192, 1n, 77);
  assert.equal(c.get('7:1', 8192, 1n), 77, 'string keys (another device) work the same');
  c.delete(9);
  assert.equal(c.get(9, 8192, 9n), undefined);
  // A key deleted and set again sits in a new slot: the ring reaching its old slot leaves it.
  c.set(9, 8192, 9n, 99);
  for (let i = 20; i < 22; i++) c.set(i, 1, 1n, i);
  assert.equal(c.get(9, 8192, 9n), 99);
  assert.ok(c.count <= 4);
});
