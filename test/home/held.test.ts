/**
 * Root's descriptor-relative link making (home/held.ts): the link is made and owned without a
 * path, and a name swapped for something else before the chown is refused, not chowned.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, constants as fsc, lstatSync, mkdirSync, mkdtempSync, openSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chownNewLink, replaceLinkAt } from '../../src/home/held.js';

const root = process.getuid?.() === 0;

function withDir(fn: (dir: string, fd: number) => void): void {
  const dir = mkdtempSync('/var/tmp/etheld-');
  const fd = openSync(dir, fsc.O_RDONLY | fsc.O_DIRECTORY);
  try {
    fn(dir, fd);
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

test('replaceLinkAt replaces a file by a link to the target, owned as asked', { skip: root ? false : 'needs root (chown)' }, () => {
  withDir((dir, fd) => {
    writeFileSync(join(dir, '.ecryptfs'), 'old');
    replaceLinkAt(fd, '.ecryptfs', '/home/.ecryptfs/u/.ecryptfs', { uid: 54321, gid: 54322 });
    const st = lstatSync(join(dir, '.ecryptfs'));
    assert.ok(st.isSymbolicLink());
    assert.deepEqual([st.uid, st.gid], [54321, 54322]);
    assert.equal(readlinkSync(join(dir, '.ecryptfs')), '/home/.ecryptfs/u/.ecryptfs');
    // Made again over the link, and a missing name is simply made.
    replaceLinkAt(fd, '.ecryptfs', '/elsewhere');
    assert.equal(readlinkSync(join(dir, '.ecryptfs')), '/elsewhere');
    replaceLinkAt(fd, Buffer.from('.Priv\xff', 'latin1'), '/x');
    assert.equal(readlinkSync(Buffer.from(join(dir, '.Priv\xff'), 'latin1')).toString(), '/x');
  });
});

test('chownNewLink refuses a name that is no longer a link and leaves it as it was', () => {
  withDir((dir, fd) => {
    // What a user's swap leaves behind: a regular file (a hard link to someone's file) under the name.
    const f = join(dir, 'swapped');
    writeFileSync(f, 'not yours');
    const before = lstatSync(f);
    assert.throws(() => chownNewLink(fd, 'swapped', before.uid + 1, before.gid + 1), /changed while it was being made/);
    const after = lstatSync(f);
    assert.deepEqual([after.uid, after.gid], [before.uid, before.gid]);
    // A directory refuses replaceLinkAt (unlinkat without AT_REMOVEDIR), and stays.
    mkdirSync(join(dir, 'adir'));
    assert.throws(() => replaceLinkAt(fd, 'adir', '/x'), /EISDIR/);
    assert.ok(lstatSync(join(dir, 'adir')).isDirectory());
  });
});
