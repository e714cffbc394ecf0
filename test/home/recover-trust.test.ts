/**
 * ecryptfs-recover-private runs as root: the wrapped passphrase it reads beside a .Private must
 * not be one a user pointed it at. Here the user makes a directory on the way to .Private (its
 * parent, or one higher up) a link to a root-only directory holding root's wrapped-passphrase:
 * readWrapped says why it does not use it, and never returns root's bytes; root's own links on
 * the way (/home -> /var/home) are followed. And the mount itself: ~/.Private linked to root's
 * encrypted directory is not mounted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readWrapped } from '../../src/home/recover.js';
import { freshUser, mountSkipReason, runAsOk, sh } from '../mount/harness.js';
import { manifest, unpackLower } from '../helpers/fixtures.js';
import { tool } from '../cli/run.js';

const USER = 'etrcv1';
const skip = process.getuid?.() !== 0 ? 'needs root (a test user, a root-only directory)' : false;

test('readWrapped as root follows no link a user made on the way to .Private', { skip }, async () => {
  const { home } = freshUser(USER);
  const rootDir = `/root/etrcv1-${process.pid}`;
  const asUser = (cmd: string) => runAsOk(USER, cmd);
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
    // Root's own link on the way (as /home -> /var/home) is followed.
    const links = `${rootDir}-links`;
    await fsp.mkdir(links, { mode: 0o755 });
    try {
      await fsp.symlink(home, join(links, 'home'));
      assert.deepEqual(await readWrapped(`${links}/home/real/.Private`), Buffer.from('mine'));
    } finally {
      await fsp.rm(links, { recursive: true, force: true });
    }
    // No .ecryptfs beside it: nothing to read.
    asUser(`mkdir ${home}/bare`);
    assert.equal(await readWrapped(`${home}/bare/.Private`), undefined);
  } finally {
    sh(`pkill -9 -u ${USER}; userdel -r ${USER} 2>/dev/null`);
    await fsp.rm(rootDir, { recursive: true, force: true });
  }
});

const mountSkip = mountSkipReason() || (sh('keyctl show @u').code !== 0 ? 'no kernel keyring (keyctl)' : false);

test('recover-private as root does not mount a lower directory of root\'s that the user linked .Private to', { skip: mountSkip }, async () => {
  const m = manifest('setup-private') as unknown as { passphrase: string };
  const U = 'etrcv2';
  const { home, uid, gid } = freshUser(U);
  const rootDir = `/root/etrcv2-${process.pid}`;
  const lower = await unpackLower('setup-private');
  let mp = '';
  try {
    // Root's own encrypted directory, in a root-only place; the user links ~/.Private to it.
    await fsp.mkdir(rootDir, { mode: 0o700 });
    await fsp.cp(lower.path, join(rootDir, '.Private'), { recursive: true });
    const link = sh(`setpriv --reuid=${uid} --regid=${gid} --init-groups ln -s ${rootDir}/.Private ${home}/.Private`);
    assert.equal(link.code, 0, link.out);
    const r = await tool('ecryptfs-recover-private', [join(home, '.Private')], `y\n${m.passphrase}\n`);
    mp = /Private data mounted at \[(.*)\]/.exec(r.stdout)?.[1] ?? '';
    assert.equal(mp, '', `root mounted the directory the user's link points to: ${r.stdout}`);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /reached through a symbolic link that is not root's/);
    assert.ok(!readFileSync('/proc/mounts', 'utf8').includes(`${rootDir}/.Private`), 'nothing mounted from root\'s directory');
  } finally {
    if (mp) sh(`umount ${mp} || umount -l ${mp}; rmdir ${mp}`);
    sh(`pkill -9 -u ${U}; userdel -r ${U} 2>/dev/null`);
    await fsp.rm(rootDir, { recursive: true, force: true });
    lower.cleanup();
  }
});
