/** The eCryptfs filesystem layer without FUSE: inode operations over a volume, errno semantics. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants as C, promises as fsp, readFileSync } from 'node:fs';
import { constants as OSC } from 'node:os';
import { join } from 'node:path';
import { EcryptfsFs, ErrnoError, ROOT } from '../../src/mount/fs.js';
import { KeyRing } from '../../src/volume/keyring.js';
import { Volume } from '../../src/volume/volume.js';
import { FIXTURES, manifest, tempDir, unpackLower } from '../helpers/fixtures.js';

const errno = (code: string) => (e: unknown) => e instanceof ErrnoError && e.errno === (OSC.errno as Record<string, number>)[code] || (e as NodeJS.ErrnoException).code === code;

async function freshFs(opts: { fnek?: boolean } = {}) {
  const dir = tempDir();
  const ring = new KeyRing();
  const [k, f] = await ring.addPassphrase('fs-layer-pass');
  const vol = await Volume.open(dir.path, ring, { sigs: [k.sig], fnekSig: opts.fnek === false ? null : f.sig });
  return { dir, vol, fs: new EcryptfsFs(vol) };
}

test('create, write, read, truncate, rename, link, unlink through the fs layer', async () => {
  const { dir, vol, fs } = await freshFs();
  try {
    const { entry, fh } = await fs.create(ROOT, 'a.txt', 0o100644, C.O_RDWR | C.O_CREAT);
    assert.equal(entry.attr.size, 0);
    assert.equal(await fs.write(fh, 0, Buffer.from('hello world')), 11);
    assert.equal((await fs.getattr(entry.nodeid)).size, 11, 'size of an open file');
    assert.equal((await fs.read(fh, 6, 100)).toString(), 'world');
    await fs.release(fh);
    assert.equal((await fs.lookup(ROOT, 'a.txt')).attr.size, 11, 'size from the header when closed');
    await fs.setattr(entry.nodeid, { size: 5 });
    assert.equal((await fs.getattr(entry.nodeid)).size, 5);
    await assert.rejects(fs.create(ROOT, 'a.txt', 0o100644, C.O_RDWR | C.O_CREAT | C.O_EXCL), errno('EEXIST'));
    const d = await fs.mkdir(ROOT, 'dir', 0o755);
    await fs.rename(ROOT, 'a.txt', d.nodeid, 'b.txt');
    await assert.rejects(fs.lookup(ROOT, 'a.txt'), errno('ENOENT'));
    const b = await fs.lookup(d.nodeid, 'b.txt');
    const fh2 = await fs.openFile(b.nodeid, C.O_RDONLY);
    assert.equal((await fs.read(fh2, 0, 100)).toString(), 'hello');
    await fs.release(fh2);
    await fs.link(b.nodeid, ROOT, 'hard');
    assert.equal((await fs.getattr(b.nodeid)).nlink, 2);
    await assert.rejects(fs.rmdir(ROOT, 'dir'), errno('ENOTEMPTY'));
    await fs.unlink(d.nodeid, 'b.txt');
    await fs.rmdir(ROOT, 'dir');
    const names = (await fs.readdir(ROOT)).map((e) => e.name);
    assert.deepEqual(names, ['hard']);
    assert.equal((await vol.readFile('hard')).toString(), 'hello');
    const s = await fs.symlink(ROOT, 'ln', 'hard');
    assert.equal(s.attr.size, 4, 'lstat size of a symlink is the clear target length');
    assert.equal((await fs.readlink(s.nodeid)).toString(), 'hard');
    assert.equal((await fs.statfs()).namelen, 143);
    await assert.rejects(fs.lookup(ROOT, 'x'.repeat(144)), errno('ENAMETOOLONG'));
  } finally {
    dir.cleanup();
  }
});

test('create, release, unlink, rename, mkdir and rmdir answer without a promise (the FUSE server replies in the same turn)', async () => {
  const { dir, fs } = await freshFs();
  const notPromise = <T>(v: T | Promise<T>): T => {
    assert.ok(!(v instanceof Promise), 'answered synchronously');
    return v as T;
  };
  try {
    const { entry, fh } = notPromise(fs.createSync(ROOT, 'a', 0o100600, C.O_RDWR | C.O_CREAT));
    assert.equal(entry.attr.size, 0);
    // A new inode has no file capability: known without asking the lower file.
    assert.throws(() => fs.getxattrSync(entry.nodeid, 'security.capability'), errno('ENODATA'));
    assert.equal(await fs.write(fh, 0, Buffer.from('12345')), 5);
    notPromise(fs.release(fh));
    // The clear size kept at close answers the next lookup; it is the header's.
    assert.equal(fs.lookupSync(ROOT, 'a').attr.size, 5);
    const d = fs.mkdirSync(ROOT, 'd', 0o755);
    notPromise(fs.renameSync(ROOT, 'a', d.nodeid, 'b'));
    assert.equal(fs.lookupSync(d.nodeid, 'b').attr.size, 5);
    notPromise(fs.unlinkSync(d.nodeid, 'b'));
    assert.throws(() => fs.lookupSync(d.nodeid, 'b'), errno('ENOENT'));
    notPromise(fs.rmdirSync(ROOT, 'd'));
    assert.deepEqual(await fs.readdir(ROOT), []);
    // An existing name without O_EXCL opens it (through the asynchronous path).
    const again = fs.createSync(ROOT, 'c', 0o100600, C.O_RDWR | C.O_CREAT);
    const c = notPromise(again);
    await fs.release(c.fh);
    const reopened = await fs.createSync(ROOT, 'c', 0o100600, C.O_RDWR | C.O_CREAT);
    assert.equal(reopened.entry.nodeid, c.entry.nodeid);
    await fs.release(reopened.fh);
  } finally {
    dir.cleanup();
  }
});

test('unlink of an open file keeps it readable and writable until release', async () => {
  const { dir, fs } = await freshFs();
  try {
    const { fh } = await fs.create(ROOT, 'f', 0o100600, C.O_RDWR | C.O_CREAT);
    await fs.write(fh, 0, Buffer.alloc(10000, 3));
    await fs.unlink(ROOT, 'f');
    await fs.write(fh, 10000, Buffer.from('tail'));
    assert.equal((await fs.read(fh, 9998, 10)).toString('hex'), '030374616966'.slice(0, 4) + Buffer.from('tail').toString('hex'));
    await fs.release(fh);
  } finally {
    dir.cleanup();
  }
});

test('O_APPEND and O_TRUNC', async () => {
  const { dir, vol, fs } = await freshFs({ fnek: false });
  try {
    const { entry, fh } = await fs.create(ROOT, 'log', 0o100644, C.O_WRONLY | C.O_CREAT);
    await fs.write(fh, 0, Buffer.from('one\n'));
    await fs.release(fh);
    const ap = await fs.openFile(entry.nodeid, C.O_WRONLY | C.O_APPEND);
    await fs.write(ap, 0, Buffer.from('two\n'));
    await fs.release(ap);
    assert.equal((await vol.readFile('log')).toString(), 'one\ntwo\n');
    const tr = await fs.openFile(entry.nodeid, C.O_WRONLY | C.O_TRUNC);
    await fs.release(tr);
    assert.equal((await vol.readFile('log')).length, 0);
  } finally {
    dir.cleanup();
  }
});

test('a lower file that is not eCryptfs lists, stats, and fails to open with EIO; passthrough reads it plain', async () => {
  const m = manifest('aes128-nonecryptfs-file');
  const lower = await unpackLower('aes128-nonecryptfs-file');
  try {
    for (const passthrough of [false, true]) {
      const ring = new KeyRing();
      await ring.addPassphrase(m.passphrase);
      const vol = await Volume.open(lower.path, ring, { passthrough });
      const fs = new EcryptfsFs(vol);
      assert.ok((await fs.readdir(ROOT)).some((e) => e.name === 'plain.txt'));
      const e = await fs.lookup(ROOT, 'plain.txt');
      assert.equal(e.attr.size, 41, 'size is the lower size, as the kernel shows');
      if (!passthrough) await assert.rejects(fs.openFile(e.nodeid, C.O_RDONLY), errno('EIO'));
      else {
        const fh = await fs.openFile(e.nodeid, C.O_RDONLY);
        assert.deepEqual(await fs.read(fh, 0, 100), readFileSync(join(lower.path, 'plain.txt')));
        await fs.release(fh);
      }
      const good = await fs.lookup(ROOT, 'good.txt');
      const fh = await fs.openFile(good.nodeid, C.O_RDONLY);
      assert.equal((await fs.read(fh, 0, 100)).toString(), 'good file\n');
      await fs.release(fh);
    }
  } finally {
    lower.cleanup();
  }
});

test('encrypted view returns the bytes the kernel shows (header synthesised from the xattr)', async () => {
  const m = manifest('aes128-xattr-metadata');
  const lower = await unpackLower('aes128-xattr-metadata');
  try {
    const ring = new KeyRing();
    await ring.addPassphrase(m.passphrase);
    const vol = await Volume.open(lower.path, ring, { fnekSig: null });
    const fs = new EcryptfsFs(vol, { encryptedView: true });
    for (const name of ['hello.txt', 'size0', 'size4097', 'size8192']) {
      const want = readFileSync(join(FIXTURES, 'corpus', 'aes128-encrypted-view', 'upper-view', name));
      const e = await fs.lookup(ROOT, name);
      assert.equal(e.attr.size, want.length, `size of ${name}`);
      const fh = await fs.openFile(e.nodeid, C.O_RDONLY);
      const got = await fs.read(fh, 0, want.length + 10);
      await fs.release(fh);
      assert.ok(got.equals(want), `bytes of ${name}`);
    }
    await assert.rejects(fs.create(ROOT, 'new', 0o100644, C.O_WRONLY | C.O_CREAT), errno('EROFS'));
    // And the xattr-metadata files read in clear without encrypted view.
    const clearFs = new EcryptfsFs(vol);
    const h = await clearFs.lookup(ROOT, 'hello.txt');
    assert.equal(h.attr.size, 6);
    const fh = await clearFs.openFile(h.nodeid, C.O_RDONLY);
    assert.equal((await clearFs.read(fh, 0, 100)).toString(), 'hello\n');
    await clearFs.release(fh);
    await assert.rejects(clearFs.getxattr(h.nodeid, 'user.ecryptfs'), errno('ENODATA'));
  } finally {
    lower.cleanup();
  }
});

test('user xattrs are kept on the lower file in clear, as the kernel stores them', async () => {
  const { dir, vol, fs } = await freshFs();
  try {
    const { entry, fh } = await fs.create(ROOT, 'x', 0o100644, C.O_RDWR | C.O_CREAT);
    await fs.release(fh);
    await fs.setxattr(entry.nodeid, 'user.test', Buffer.from('value'), 0);
    assert.equal((await fs.getxattr(entry.nodeid, 'user.test')).toString(), 'value');
    assert.deepEqual(await fs.listxattr(entry.nodeid), ['user.test']);
    const raw = await vol.lower.getxattr(vol.lowerPath('x'), 'user.test');
    assert.equal(raw?.toString(), 'value');
    await fs.removexattr(entry.nodeid, 'user.test');
    await assert.rejects(fs.getxattr(entry.nodeid, 'user.test'), errno('ENODATA'));
    void fsp;
  } finally {
    dir.cleanup();
  }
});

test('hard links: the node keeps a name that still exists when the one it was last seen by goes', async () => {
  const { dir, fs } = await freshFs();
  try {
    const { entry, fh } = await fs.create(ROOT, 'a', 0o100644, C.O_RDWR | C.O_CREAT);
    await fs.write(fh, 0, Buffer.from('hello'));
    await fs.release(fh);
    const b = await fs.link(entry.nodeid, ROOT, 'b');
    assert.equal(b.nodeid, entry.nodeid, 'one node per inode');
    await fs.unlink(ROOT, 'b');
    assert.equal((await fs.getattr(entry.nodeid)).size, 5, 'still reachable by its other name');
    await fs.setattr(entry.nodeid, { mode: 0o600 });
    assert.equal((await fs.getattr(entry.nodeid)).mode & 0o777, 0o600);
    // Renamed and linked again: the remaining name is the renamed one.
    await fs.link(entry.nodeid, ROOT, 'c');
    await fs.rename(ROOT, 'a', ROOT, 'd');
    await fs.unlink(ROOT, 'c');
    const h = await fs.openFile(entry.nodeid, C.O_RDONLY);
    assert.equal((await fs.read(h, 0, 10)).toString(), 'hello');
    await fs.release(h);
    assert.deepEqual((await fs.readdir(ROOT)).map((e) => e.name), ['d']);
  } finally {
    dir.cleanup();
  }
});
