/** ecryptfs-recover-private on a home made by the real ecryptfs-utils, without the kernel module. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freshUser, mountSkipReason, sh } from '../mount/harness.js';
import { manifest, tempDir, unpackLower } from '../helpers/fixtures.js';
import { tool } from '../cli/run.js';
import { unwrapWithLogin } from '../../src/home/recover.js';
import { wrapPassphrase, wrapPassphraseV1 } from '../../src/format/wrapped.js';
import { isEcryptfsError } from '../../src/errors.js';

test('unwrapWithLogin: the MOUNT passphrase with the right LOGIN passphrase, undefined with a wrong one', () => {
  for (const w of [wrapPassphrase('0123456789abcdef0123456789abcdef', 'login pw'), wrapPassphraseV1('0123456789abcdef0123456789abcdef', 'login pw')]) {
    assert.equal(unwrapWithLogin(w, 'login pw')?.toString(), '0123456789abcdef0123456789abcdef');
    assert.equal(unwrapWithLogin(w, Buffer.from('login pw'))?.toString(), '0123456789abcdef0123456789abcdef');
    assert.equal(unwrapWithLogin(w, 'wrong'), undefined);
  }
  // a file that is no wrapped passphrase is an error, not a wrong password
  assert.throws(() => unwrapWithLogin(Buffer.from('not a wrapped passphrase at all'), 'x'), (e: unknown) => isEcryptfsError(e) && !isEcryptfsError(e, 'EWRONGPASS'));
});

const skip = mountSkipReason() || (sh('keyctl show @u').code !== 0 ? 'no kernel keyring (keyctl)' : false);

test('recovers a real ecryptfs-setup-private directory with the LOGIN passphrase and mounts it read-only', { skip }, async () => {
  const m = manifest('setup-private') as unknown as { login_passphrase: string; passphrase: string; dot_ecryptfs: Record<string, { hex: string | null }>; files: Array<{ path: string; type: string; sha256?: string }> };
  const t = tempDir('ecryptfs-recover-');
  const lower = await unpackLower('setup-private');
  let mp = '';
  try {
    const priv = join(t.path, 'home', '.Private');
    await fsp.mkdir(join(t.path, 'home', '.ecryptfs'), { recursive: true });
    await fsp.cp(lower.path, priv, { recursive: true });
    await fsp.writeFile(join(t.path, 'home', '.ecryptfs', 'wrapped-passphrase'), Buffer.from(m.dot_ecryptfs['wrapped-passphrase'].hex!, 'hex'));
    const r = await tool('ecryptfs-recover-private', [priv], `y\ny\n${m.login_passphrase}\n`);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /INFO: Found your wrapped-passphrase/);
    mp = /INFO: Success! {2}Private data mounted at \[(.*)\]\./.exec(r.stdout)?.[1] ?? '';
    assert.ok(mp.startsWith('/tmp/ecryptfs.'), r.stdout);
    // the Private tools' mount options: read-only here, and no set-id or device files
    const opts = readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === mp)?.split(' ')[3].split(',') ?? [];
    for (const o of ['ro', 'nosuid', 'nodev']) assert.ok(opts.includes(o), `${o} in ${opts.join(',')}`);
    for (const f of m.files.filter((x) => x.type === 'file' && x.sha256)) {
      assert.equal(createHash('sha256').update(readFileSync(join(mp, f.path))).digest('hex'), f.sha256, f.path);
    }
    await assert.rejects(fsp.writeFile(join(mp, 'x'), 'x'), { code: 'EROFS' });
    const wrong = await tool('ecryptfs-recover-private', [priv], 'y\ny\nwrong password\n');
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /does not unwrap the mount passphrase/);
  } finally {
    if (mp) sh(`umount ${mp} || umount -l ${mp}; rmdir ${mp}`);
    lower.cleanup();
    t.cleanup();
  }
});

test('recover-private as root follows no link the user made to a root-only wrapped-passphrase (issue #12)', { skip }, async () => {
  const m = manifest('setup-private') as unknown as { login_passphrase: string; passphrase: string; dot_ecryptfs: Record<string, { hex: string | null }> };
  const USER = 'etroot4';
  const { home, uid, gid } = freshUser(USER);
  const rootDir = `/root/etroot4-${process.pid}`;
  const lower = await unpackLower('setup-private');
  const mps: string[] = [];
  try {
    // Root's own wrapped passphrase (0600, in a root-only directory): what the user points at.
    await fsp.mkdir(rootDir, { mode: 0o700 });
    await fsp.writeFile(join(rootDir, 'wrapped-passphrase'), Buffer.from(m.dot_ecryptfs['wrapped-passphrase'].hex!, 'hex'), { mode: 0o600 });
    await fsp.cp(lower.path, join(home, '.Private'), { recursive: true });
    sh(`chown -R ${uid}:${gid} ${home}/.Private`);
    const asUser = (cmd: string) => sh(`setpriv --reuid=${uid} --regid=${gid} --init-groups sh -c '${cmd}'`);
    for (const [setup, what] of [[`ln -s ${rootDir} ${home}/.ecryptfs`, `${home}/.ecryptfs`], [`rm ${home}/.ecryptfs; mkdir ${home}/.ecryptfs; ln -s ${rootDir}/wrapped-passphrase ${home}/.ecryptfs/wrapped-passphrase`, `${home}/.ecryptfs/wrapped-passphrase`]] as const) {
      asUser(setup);
      // Only the MOUNT passphrase is asked: the link is not followed.
      const r = await tool('ecryptfs-recover-private', [join(home, '.Private')], `y\n${m.passphrase}\n`);
      assert.doesNotMatch(r.stdout, /Found your wrapped-passphrase/, 'a wrapped-passphrase read through a link');
      assert.match(r.stdout, new RegExp(`INFO: ${what} is a symbolic link or not what it should be: not followed[^\\n]*MOUNT passphrase`));
      assert.equal(r.code, 0, r.stdout + r.stderr);
      const mp = /Private data mounted at \[(.*)\]/.exec(r.stdout)?.[1] ?? '';
      assert.ok(mp, r.stdout);
      mps.push(mp);
    }
  } finally {
    for (const mp of mps) sh(`umount ${mp} || umount -l ${mp}; rmdir ${mp}`);
    sh(`pkill -9 -u ${USER}; userdel -r ${USER}`);
    await fsp.rm(rootDir, { recursive: true, force: true });
    lower.cleanup();
  }
});
