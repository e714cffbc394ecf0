/**
 * ecryptfs-rewrite-file run by root on a user's files (a root mount with allow_other, say): a
 * directory of the user's on the way, made a link to a root-only directory, must not have root
 * copy, chmod and rename there. Root's own links are followed; the user's file is rewritten with
 * its owner, mode and contents.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/fixtures.js';
import { BIN, runNode } from '../cli/run.js';
import { freshUser, sh } from '../mount/harness.js';

const USER = 'etrwf1';
const skip = process.getuid?.() !== 0 ? 'needs root (a test user, a root-only directory)' : false;

test('ecryptfs-rewrite-file as root follows no link a user made on the way to the file', { skip }, async () => {
  const { uid, gid } = freshUser(USER);
  const t = tempDir('etrwf1-');
  try {
    chmodSync(t.path, 0o755);
    // Root's directory and file, out of the user's reach.
    const rootDir = join(t.path, 'root-only');
    mkdirSync(rootDir, { mode: 0o700 });
    writeFileSync(join(rootDir, 'f'), "root's\n", { mode: 0o600 });
    const before = statSync(join(rootDir, 'f'));
    // The user's directory, where the user makes d a link to root's directory.
    const u = join(t.path, 'u');
    mkdirSync(u, { mode: 0o755 });
    chownSync(u, uid, gid);
    const ln = sh(`setpriv --reuid=${uid} --regid=${gid} --init-groups ln -s ${rootDir} ${u}/d`);
    assert.equal(ln.code, 0, ln.out);

    const r = await runNode(`${BIN}ecryptfs-rewrite-file.js`, [join(u, 'd', 'f')]);
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /is reached through a symbolic link that is not root's: not followed/);
    const after = statSync(join(rootDir, 'f'));
    assert.equal(after.ino, before.ino, "root's file was replaced through the user's link");
    assert.equal(after.mode & 0o7777, 0o600);
    assert.deepEqual(readFileSync(join(rootDir, 'f'), 'utf8'), "root's\n");

    // The user's own file, reached through root's link: rewritten, owner, mode and bytes kept.
    sh(`setpriv --reuid=${uid} --regid=${gid} --init-groups sh -c 'rm ${u}/d && mkdir ${u}/d && printf mine > ${u}/d/g && chmod 640 ${u}/d/g'`);
    symlinkSync(u, join(t.path, 'via-root'));
    const old = statSync(join(u, 'd', 'g'));
    const ok = await runNode(`${BIN}ecryptfs-rewrite-file.js`, [join(t.path, 'via-root', 'd', 'g')]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    const g = statSync(join(u, 'd', 'g'));
    assert.notEqual(g.ino, old.ino, 'rewritten (a new file renamed over the old)');
    assert.equal(g.uid, uid);
    assert.equal(g.mode & 0o7777, 0o640);
    assert.equal(readFileSync(join(u, 'd', 'g'), 'utf8'), 'mine');
  } finally {
    sh(`pkill -9 -u ${USER}; userdel -r ${USER} 2>/dev/null`);
    t.cleanup();
  }
});
