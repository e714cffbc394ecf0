/**
 * The mount's caches against changes made behind it, in the lower directory: a file rewritten
 * there (same name, same inode or a new one) shows its new clear size at the next lookup or
 * getattr, since the clear size is remembered per lower inode only while the lower size and
 * ctime stay the same; names are translated by pure functions and cannot go stale.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants as C, existsSync, promises as fsp } from 'node:fs';
import { constants as OSC } from 'node:os';
import { join } from 'node:path';
import * as sys from '../../src/lower/sys.js';
import { EcryptfsFs, ROOT } from '../../src/mount/fs.js';
import { withFreshFs } from './fresh-fs.js';


/** An absent security.selinux's answer: EOPNOTSUPP, but ENODATA where SELinux is on (xattr-ops.ts). */
function isAbsentLabel(e: unknown): boolean {
  const x = e as { errno?: number; code?: string };
  return existsSync('/sys/fs/selinux/enforce') ? x.errno === OSC.errno.ENODATA || x.code === 'ENODATA' : x.errno === OSC.errno.EOPNOTSUPP;
}

/** The first encrypted name in `lowerDir` other than `except`. */
async function lowerName(lowerDir: string, except?: string): Promise<string> {
  return (await fsp.readdir(lowerDir)).find((n) => n.startsWith('ECRYPTFS_FNEK_ENCRYPTED.') && n !== except)!;
}

test('a file rewritten in the lower directory behind the mount shows its new size', async () => {
  await withFreshFs(async ({ lowerDir, fs, openOther }) => {
    const { entry, fh } = await fs.create(ROOT, 'a.txt', 0o100644, C.O_RDWR | C.O_CREAT);
    await fs.write(fh, 0, Buffer.alloc(100, 1));
    await fs.release(fh);
    assert.equal(fs.lookupSync(ROOT, 'a.txt').attr.size, 100);
    assert.equal(fs.getattrSync(entry.nodeid).size, 100, 'answered from the cache');
    // Behind the mount: another writer (a second volume on the same lower dir) changes the file
    // in place: same inode, same lower size (one extent), new clear size.
    const other = await openOther();
    await other.writeFile('a.txt', Buffer.alloc(50, 2));
    other.close();
    assert.equal(fs.getattrSync(entry.nodeid).size, 50, 'the ctime moved: the header is read again');
    assert.equal(fs.lookupSync(ROOT, 'a.txt').attr.size, 50);
    // Replaced by a new lower file (rename over it): the name now leads to another inode.
    const lower = await lowerName(lowerDir);
    await fsp.copyFile(join(lowerDir, lower), join(lowerDir, 'tmp'));
    const o2 = await openOther();
    await o2.writeFile('b.txt', Buffer.alloc(7000, 3));
    o2.close();
    const lowerB = await lowerName(lowerDir, lower);
    await fsp.rename(join(lowerDir, lowerB), join(lowerDir, lower));
    await fsp.rm(join(lowerDir, 'tmp'));
    assert.equal(fs.lookupSync(ROOT, 'a.txt').attr.size, 7000);
    assert.deepEqual((await fs.readdir(ROOT)).map((e) => e.name), ['a.txt']);
  });
});

/** A POSIX ACL in the kernel's xattr form: owner rw, user 4321 r, group r, mask r, others r. */
function aclValue(): Buffer {
  const entries: Array<[number, number, number]> = [[1, 6, 0xffffffff], [2, 4, 4321], [4, 4, 0xffffffff], [0x10, 4, 0xffffffff], [0x20, 4, 0xffffffff]];
  const b = Buffer.alloc(4 + entries.length * 8);
  b.writeUInt32LE(2, 0);
  entries.forEach(([tag, perm, id], i) => {
    b.writeUInt16LE(tag, 4 + i * 8);
    b.writeUInt16LE(perm, 6 + i * 8);
    b.writeUInt32LE(id, 8 + i * 8);
  });
  return b;
}

test('xattrs `ls -l` asks for: a remembered absence ends when the lower inode changes, behind the mount or through it', async () => {
  await withFreshFs(async ({ lowerDir, fs }) => {
    const { entry, fh } = await fs.create(ROOT, 'acl.txt', 0o100644, C.O_RDWR | C.O_CREAT);
    await fs.release(fh);
    const lower = join(lowerDir, await lowerName(lowerDir));
    const noData = (e: unknown) => (e as { errno?: number }).errno === OSC.errno.ENODATA;
    for (const nodeid of [entry.nodeid, ROOT]) {
      const name = nodeid === ROOT ? 'system.posix_acl_default' : 'system.posix_acl_access';
      const path = nodeid === ROOT ? lowerDir : lower;
      assert.throws(() => fs.getxattrSync(nodeid, 'security.selinux'), isAbsentLabel);
      assert.throws(() => fs.getxattrSync(nodeid, name), noData, 'absent (now remembered)');
      assert.throws(() => fs.getxattrSync(nodeid, name), noData);
      // Behind the mount: the ACL appears on the lower inode (its ctime moves).
      try {
        sys.setxattr(path, name, aclValue());
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'EOPNOTSUPP') return; // no ACLs on this /tmp
        throw e;
      }
      assert.deepEqual(fs.getxattrSync(nodeid, name), sys.getxattr(path, name), 'seen at once');
      // Through the mount: removed, absent again; set again, seen again.
      await fs.removexattr(nodeid, name);
      assert.throws(() => fs.getxattrSync(nodeid, name), noData);
      await fs.setxattr(nodeid, name, aclValue(), 0);
      assert.deepEqual(fs.getxattrSync(nodeid, name), sys.getxattr(path, name));
      await fs.removexattr(nodeid, name);
    }
  });
});

test('security.selinux: absent is EOPNOTSUPP without SELinux (so `ls -l` stops asking for every entry), present is its value, also once it appears behind the mount', async () => {
  await withFreshFs(async ({ lowerDir, fs }) => {
    const notSup = isAbsentLabel;
    const { entry, fh } = await fs.create(ROOT, 'l.txt', 0o100644, C.O_RDWR | C.O_CREAT);
    await fs.release(fh);
    const lower = join(lowerDir, await lowerName(lowerDir));
    for (let i = 0; i < 2; i++) assert.throws(() => fs.getxattrSync(entry.nodeid, 'security.selinux'), notSup, i ? 'remembered absence' : 'listed');
    assert.throws(() => fs.getxattrSync(ROOT, 'security.selinux'), notSup);
    const label = Buffer.from('system_u:object_r:user_home_t:s0\0');
    // Behind the mount (its ctime moves): seen at once.
    try {
      sys.setxattr(lower, 'security.selinux', label);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EOPNOTSUPP') return; // no security.* xattrs on this /tmp
      throw e;
    }
    assert.deepEqual(fs.getxattrSync(entry.nodeid, 'security.selinux'), label);
    // Through the mount: removed, then set again.
    await fs.removexattr(entry.nodeid, 'security.selinux');
    assert.throws(() => fs.getxattrSync(entry.nodeid, 'security.selinux'), notSup);
    await fs.setxattr(entry.nodeid, 'security.selinux', label, 0);
    assert.deepEqual(fs.getxattrSync(entry.nodeid, 'security.selinux'), label);
    // Other names still say "no such attribute".
    assert.throws(() => fs.getxattrSync(entry.nodeid, 'security.ima'), (e: unknown) => (e as { code?: string }).code === 'ENODATA' || (e as { errno?: number }).errno === OSC.errno.ENODATA);
  });
});

test('a node whose lower name now leads to another inode never answers with that inode\'s xattrs', async () => {
  await withFreshFs(async ({ lowerDir, fs }) => {
    const { entry, fh } = await fs.create(ROOT, 'a.txt', 0o100644, C.O_RDWR | C.O_CREAT);
    await fs.release(fh);
    const lowerA = await lowerName(lowerDir);
    const b = await fs.create(ROOT, 'b.txt', 0o100644, C.O_RDWR | C.O_CREAT);
    await fs.release(b.fh);
    const lowerB = await lowerName(lowerDir, lowerA);
    try {
      // The ACL on a's inode, none on b's: a list taken of b's inode through a's name would make
      // the node of a.txt remember "no ACL" (ENODATA); the inode check makes it ESTALE instead.
      sys.setxattr(join(lowerDir, lowerA), 'system.posix_acl_access', aclValue());
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EOPNOTSUPP') return; // no ACLs on this /tmp
      throw e;
    }
    // Behind the mount: b's lower file takes a's name before the node of a.txt is asked anything.
    await fsp.rename(join(lowerDir, lowerB), join(lowerDir, lowerA));
    assert.throws(() => fs.getxattrSync(entry.nodeid, 'system.posix_acl_access'), (e: unknown) => (e as { code?: string }).code === 'ESTALE' || (e as { errno?: number }).errno === OSC.errno.ESTALE);
    // Looked up again, the name is b's inode, without an ACL.
    assert.throws(() => fs.getxattrSync(fs.lookupSync(ROOT, 'a.txt').nodeid, 'system.posix_acl_access'), (e: unknown) => (e as { errno?: number }).errno === OSC.errno.ENODATA || (e as { code?: string }).code === 'ENODATA');
  });
});

test('the clear size remembered when a file is closed is the one it was closed with', async () => {
  await withFreshFs(async ({ fs, openOther }) => {
    const { entry, fh } = await fs.create(ROOT, 'c.txt', 0o100644, C.O_RDWR | C.O_CREAT);
    await fs.write(fh, 0, Buffer.alloc(5000, 1));
    await fs.setattr(entry.nodeid, { size: 4097 });
    await fs.release(fh);
    assert.equal(fs.getattrSync(entry.nodeid).size, 4097);
    assert.equal(fs.lookupSync(ROOT, 'c.txt').attr.size, 4097);
    // Opened again, grown within the same last extent (same lower size), closed: the new size.
    const fh2 = await fs.openFile(entry.nodeid, C.O_RDWR);
    await fs.write(fh2, 4097, Buffer.alloc(100, 2));
    await fs.release(fh2);
    assert.equal(fs.getattrSync(entry.nodeid).size, 4197);
    // Behind the mount, in place (same lower size): the header is read again.
    const other = await openOther();
    await other.writeFile('c.txt', Buffer.alloc(4100, 3));
    assert.equal(fs.getattrSync(entry.nodeid).size, 4100);
    other.close();
  });
});

test('a lookup that reads a header does not count as an access (the lower atime stays)', async () => {
  await withFreshFs(async ({ lowerDir, vol, fs }) => {
    const { fh } = await fs.create(ROOT, 'a.txt', 0o100644, C.O_RDWR | C.O_CREAT);
    await fs.write(fh, 0, Buffer.alloc(100, 1));
    await fs.release(fh);
    const lower = join(lowerDir, await lowerName(lowerDir));
    // An atime older than the mtime: under relatime (the default) the next read would update it.
    const st = await fsp.stat(lower);
    await fsp.utimes(lower, new Date(st.mtimeMs - 60_000), st.mtime);
    const before = (await fsp.stat(lower)).atimeMs;
    // A daemon that has not seen the file reads its header for the size.
    const fresh = new EcryptfsFs(vol);
    assert.equal(fresh.lookupSync(ROOT, 'a.txt').attr.size, 100);
    assert.equal((await fsp.stat(lower)).atimeMs, before);
  });
});

test('a symlink\'s clear length is remembered per lower inode; a new link under the same name shows its own', async () => {
  await withFreshFs(async ({ lowerDir, fs, openOther }) => {
    const s = await fs.symlink(ROOT, 'ln', 'a/short');
    assert.equal(fs.getattrSync(s.nodeid).size, 7);
    assert.equal(fs.getattrSync(s.nodeid).size, 7, 'from the cache');
    // Behind the mount: the link is replaced by another one (a new lower inode) under the same name.
    const lower = await lowerName(lowerDir);
    const other = await openOther();
    await other.symlink('a/much/longer/target', 'ln2');
    other.close();
    const lower2 = await lowerName(lowerDir, lower);
    await fsp.rename(join(lowerDir, lower2), join(lowerDir, lower));
    assert.equal(fs.lookupSync(ROOT, 'ln').attr.size, 20);
    assert.equal((await fs.readlink(fs.lookupSync(ROOT, 'ln').nodeid)).toString(), 'a/much/longer/target');
  });
});
