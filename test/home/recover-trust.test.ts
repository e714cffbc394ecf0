/**
 * ecryptfs-recover-private runs as root: the wrapped passphrase it reads beside a .Private must
 * not be one a user pointed it at. Here the user makes a directory on the way to .Private (its
 * parent, or one higher up) a link to a root-only directory holding root's wrapped-passphrase:
 * readWrapped says why it does not use it, and never returns root's bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { readWrapped } from '../../src/home/recover.js';
import { freshUser, sh } from '../mount/harness.js';

const USER = 'etrcv1';
const skip = process.getuid?.() !== 0 ? 'needs root (a test user, a root-only directory)' : false;

test('readWrapped as root follows no link a user made on the way to .Private', { skip }, async () => {
  const { home, uid } = freshUser(USER);
  const rootDir = `/root/etrcv1-${process.pid}`;
  const asUser = (cmd: string) => {
    const r = sh(`setpriv --reuid=${uid} --regid=${uid} --init-groups sh -c '${cmd}'`);
    assert.equal(r.code, 0, r.out);
  };
  try {
    const secret = Buffer.from('root-only wrapped passphrase bytes');
    for (const d of [join(rootDir, '.ecryptfs'), join(rootDir, 'b', '.ecryptfs')]) {
      await fsp.mkdir(d, { recursive: true, mode: 0o700 });
      await fsp.writeFile(join(d, 'wrapped-passphrase'), secret, { mode: 0o600 });
    }
    await fsp.chmod(rootDir, 0o700);

    // The parent of .Private is a link; a directory higher up is a link.
    asUser(`ln -s ${rootDir} ${home}/box && ln -s ${rootDir} ${home}/a`);
    for (const [priv, where] of [[`${home}/box/.Private`, `${home}/box`], [`${home}/a/b/.Private`, `${home}/a/b`]]) {
      const r = await readWrapped(priv);
      assert.ok(!Buffer.isBuffer(r), `${priv}: root's wrapped-passphrase read through the user's link`);
      assert.equal(r, `${where} (or a directory on the way to it) is a symbolic link or not what it should be: not followed (run as root, this tool reads nothing a user can point elsewhere). Give the directory it stands for (for an encrypted home, /home/.ecryptfs/USER/.Private), or the MOUNT passphrase.`);
    }

    // Without links, the user's own file is read, relative paths included.
    asUser(`mkdir -p ${home}/real/.ecryptfs ${home}/real/.Private && printf mine > ${home}/real/.ecryptfs/wrapped-passphrase`);
    assert.deepEqual(await readWrapped(`${home}/real/.Private`), Buffer.from('mine'));
    const cwd = process.cwd();
    process.chdir(home);
    try {
      assert.deepEqual(await readWrapped('real/.Private'), Buffer.from('mine'));
    } finally {
      process.chdir(cwd);
    }
    // No .ecryptfs beside it: nothing to read.
    asUser(`mkdir ${home}/bare`);
    assert.equal(await readWrapped(`${home}/bare/.Private`), undefined);
  } finally {
    sh(`pkill -9 -u ${USER}; userdel -r ${USER} 2>/dev/null`);
    await fsp.rm(rootDir, { recursive: true, force: true });
  }
});
