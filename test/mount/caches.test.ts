/**
 * The mount's caches against changes made behind it, in the lower directory: a file rewritten
 * there (same name, same inode or a new one) shows its new clear size at the next lookup or
 * getattr, since the clear size is remembered per lower inode only while the lower size and
 * ctime stay the same; names are translated by pure functions and cannot go stale.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants as C, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { EcryptfsFs, ROOT } from '../../src/mount/fs.js';
import { KeyRing } from '../../src/volume/keyring.js';
import { Volume } from '../../src/volume/volume.js';
import { tempDir } from '../helpers/fixtures.js';

test('a file rewritten in the lower directory behind the mount shows its new size', async () => {
  const dir = tempDir();
  try {
    // Each volume its own ring: closing a volume wipes its keys.
    const open = async () => {
      const ring = new KeyRing();
      const [k, f] = await ring.addPassphrase('cache-pass');
      return Volume.open(dir.path, ring, { sigs: [k.sig], fnekSig: f.sig });
    };
    const vol = await open();
    const fs = new EcryptfsFs(vol);
    const { entry, fh } = await fs.create(ROOT, 'a.txt', 0o100644, C.O_RDWR | C.O_CREAT);
    await fs.write(fh, 0, Buffer.alloc(100, 1));
    await fs.release(fh);
    assert.equal(fs.lookupSync(ROOT, 'a.txt').attr.size, 100);
    assert.equal(fs.getattrSync(entry.nodeid).size, 100, 'answered from the cache');
    // Behind the mount: another writer (a second volume on the same lower dir) changes the file
    // in place: same inode, same lower size (one extent), new clear size.
    const other = await open();
    await other.writeFile('a.txt', Buffer.alloc(50, 2));
    other.close();
    assert.equal(fs.getattrSync(entry.nodeid).size, 50, 'the ctime moved: the header is read again');
    assert.equal(fs.lookupSync(ROOT, 'a.txt').attr.size, 50);
    // Replaced by a new lower file (rename over it): the name now leads to another inode.
    const lower = (await fsp.readdir(dir.path)).find((n) => n.startsWith('ECRYPTFS_FNEK_ENCRYPTED.'))!;
    await fsp.copyFile(join(dir.path, lower), join(dir.path, 'tmp'));
    const o2 = await open();
    await o2.writeFile('b.txt', Buffer.alloc(7000, 3));
    o2.close();
    const lowerB = (await fsp.readdir(dir.path)).find((n) => n.startsWith('ECRYPTFS_FNEK_ENCRYPTED.') && n !== lower)!;
    await fsp.rename(join(dir.path, lowerB), join(dir.path, lower));
    await fsp.rm(join(dir.path, 'tmp'));
    assert.equal(fs.lookupSync(ROOT, 'a.txt').attr.size, 7000);
    assert.deepEqual((await fs.readdir(ROOT)).map((e) => e.name), ['a.txt']);
    vol.close();
  } finally {
    dir.cleanup();
  }
});
