/** listxattrat by name in a directory descriptor: the names of that entry's own inode, never a symlink's target. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, symlinkSync, writeFileSync } from 'node:fs';
import { constants as OSC } from 'node:os';
import { join } from 'node:path';
import * as sys from '../../src/lower/sys.js';
import { tempDir } from '../helpers/fixtures.js';

test('listxattratOrErrno lists the entry itself, does not follow a symlink, and answers a missing name with ENOENT', (t) => {
  const d = tempDir('ecryptfs-xattrat-');
  const dir = openSync(d.path, 'r');
  try {
    writeFileSync(join(d.path, 'f'), 'x');
    try {
      sys.setxattr(join(d.path, 'f'), 'user.one', Buffer.from('1'));
      sys.setxattr(join(d.path, 'f'), 'user.two', Buffer.from('2'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EOPNOTSUPP') return t.skip('no user xattrs on this temporary directory');
      throw e;
    }
    symlinkSync('f', join(d.path, 'ln'));
    const names = sys.listxattratOrErrno(dir, 'f');
    if (names === OSC.errno.ENOSYS) return t.skip('kernel before 6.13: no listxattrat (the O_PATH way is taken)');
    assert.deepEqual(Array.isArray(names) ? [...names].sort() : names, ['user.one', 'user.two']);
    assert.deepEqual(sys.listxattratOrErrno(dir, Buffer.from('ln')), [], 'the link itself, not its target');
    assert.equal(sys.listxattratOrErrno(dir, 'missing'), OSC.errno.ENOENT);
    // A list longer than the first buffer (256 bytes) comes whole.
    const many = Array.from({ length: 40 }, (_, i) => `user.name-of-some-length-${i}`);
    for (const n of many) sys.setxattr(join(d.path, 'f'), n, Buffer.from('v'));
    const all = sys.listxattratOrErrno(dir, 'f');
    assert.ok(Array.isArray(all) && all.length === 42 && many.every((n) => all.includes(n)));
  } finally {
    closeSync(dir);
    d.cleanup();
  }
});
