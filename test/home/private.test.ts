/**
 * A Private directory for a real user: ecryptfs-setup-private (files and modes as the real tool
 * leaves them), ecryptfs-mount-private with the login password, the session counter of
 * ecryptfs-umount-private, and the wrapped passphrase read by the real ecryptfs-unwrap-passphrase.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync, chownSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deriveKey, DEFAULT_SALT, FNEK_SALT } from '../../src/format/kdf.js';
import { mountSkipReason, openDevFuse, sh, freshUser, runAs } from '../mount/harness.js';

const BIN = fileURLToPath(new URL('../../../bin/', import.meta.url));
const USER = 'ecryptfs-private-test';
const skip = mountSkipReason() || (sh('command -v fusermount3 && keyctl show @u').code !== 0 ? 'needs fusermount3 (fuse3) and keyctl (keyutils)' : false);

function asUser(cmd: string, input = ''): { code: number; out: string } {
  const r = spawnSync('su', [USER, '-s', '/bin/sh', '-c', `cd /tmp && ${cmd}`], { input, encoding: 'utf8' });
  // pam_ecryptfs from the real ecryptfs-utils may chime in at su's session start: not ours.
  const out = `${r.stdout}${r.stderr}`.split('\n').filter((l) => !/Signature not found in user keyring|Perhaps try the interactive/.test(l)).join('\n');
  return { code: r.status ?? -1, out };
}
const tool = (name: string, args = '') => `${process.execPath} --openssl-legacy-provider ${join(BIN, `${name}.js`)} ${args}`;

test('setup-private, mount-private with the login password, and the last session unmounts', { skip }, async () => {
  openDevFuse();
  const { home } = freshUser(USER, 'login-password-1');
  try {
    writeFileSync(join(home, 'wrong'), 'not-my-password\n');
    writeFileSync(join(home, 'lp'), 'login-password-1\n');
    writeFileSync(join(home, 'mp'), 'mount-pass-abcdef0123456789abcd\n');
    const uid = Number(sh(`id -u ${USER}`).out.trim());
    const gid = Number(sh(`id -g ${USER}`).out.trim());
    chownSync(join(home, 'lp'), uid, gid);
    chownSync(join(home, 'mp'), uid, gid);
    chownSync(join(home, 'wrong'), uid, gid);
    const typo = asUser(tool('ecryptfs-setup-private', `--loginpass-file ${home}/wrong --mountpass-file ${home}/mp`));
    assert.notEqual(typo.code, 0);
    assert.match(typo.out, /ERROR: {2}Your login passphrase is incorrect/);
    const setup = asUser(tool('ecryptfs-setup-private', `--loginpass-file ${home}/lp --mountpass-file ${home}/mp`));
    assert.equal(setup.code, 0, setup.out);
    assert.match(setup.out, /YOU SHOULD RECORD YOUR MOUNT PASSPHRASE[\s\S]*Done configuring\.[\s\S]*Testing succeeded\./);
    const dot = join(home, '.ecryptfs');
    const sig = deriveKey('mount-pass-abcdef0123456789abcd', DEFAULT_SALT).sig;
    const fnek = deriveKey('mount-pass-abcdef0123456789abcd', FNEK_SALT).sig;
    assert.equal(readFileSync(join(dot, 'Private.sig'), 'utf8'), `${sig}\n${fnek}\n`);
    assert.equal(readFileSync(join(dot, 'Private.mnt'), 'utf8'), `${home}/Private\n`);
    for (const [f, mode] of [['Private.sig', 0o600], ['Private.mnt', 0o600], ['wrapped-passphrase', 0o600], ['auto-mount', 0o644], ['auto-umount', 0o644]] as const) {
      const st = statSync(join(dot, f));
      assert.equal(st.mode & 0o777, mode, f);
      assert.equal(st.uid, uid, `${f} owned by the user`);
    }
    assert.equal(statSync(join(home, 'Private')).mode & 0o777, 0o500, '~/Private is 0500 while unmounted');
    assert.equal(statSync(join(home, '.Private')).mode & 0o777, 0o700);
    if (sh('command -v ecryptfs-unwrap-passphrase').code === 0) {
      const real = spawnSync('ecryptfs-unwrap-passphrase', [join(dot, 'wrapped-passphrase'), '-'], { input: 'login-password-1', encoding: 'utf8' });
      assert.equal(real.stdout.trim(), 'mount-pass-abcdef0123456789abcd', 'the real tool unwraps our file');
    }
    const wrong = asUser(tool('ecryptfs-mount-private'), 'wrong\n');
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.out, /ERROR: Your passphrase is incorrect/);
    const m1 = asUser(`${tool('ecryptfs-mount-private')} && echo kept > ${home}/Private/doc && ${tool('ecryptfs-mount-private')} </dev/null`, 'login-password-1\n');
    assert.equal(m1.code, 0, m1.out);
    const u1 = asUser(tool('ecryptfs-umount-private'));
    assert.match(u1.out, /Sessions still open, not unmounting/);
    assert.match(readFileSync('/proc/mounts', 'utf8'), new RegExp(` ${home}/Private fuse\\.ecryptfs `));
    const u2 = asUser(tool('ecryptfs-umount-private'));
    assert.equal(u2.code, 0, u2.out);
    assert.doesNotMatch(readFileSync('/proc/mounts', 'utf8'), new RegExp(` ${home}/Private `));
    assert.equal(asUser('keyctl list @u').out.trim(), 'keyring is empty', 'keys unlinked at the last unmount');
    const lower = sh(`ls ${home}/.Private`).out.trim();
    assert.match(lower, /^ECRYPTFS_FNEK_ENCRYPTED\./);
    // insert-wrapped puts both keys back; then the mount needs no password.
    const ins = asUser(`${tool('ecryptfs-insert-wrapped-passphrase-into-keyring', `${dot}/wrapped-passphrase -`)} && ${tool('ecryptfs-mount-private')} </dev/null && cat ${home}/Private/doc && ${tool('ecryptfs-umount-private')}`, 'login-password-1');
    assert.equal(ins.code, 0, ins.out);
    assert.match(ins.out, new RegExp(`Inserted auth tok with sig \\[${sig}\\] into the user session keyring\\nkept`));
    // As mount.ecryptfs_private: only a lower directory of the user's own is mounted, and a
    // mount that did not happen leaves the session counter as it was.
    sh(`chown root: ${home}/.Private`);
    const foreign = asUser(`${tool('ecryptfs-insert-wrapped-passphrase-into-keyring', `${dot}/wrapped-passphrase -`)} >/dev/null && ${tool('ecryptfs-mount-private')} </dev/null`, 'login-password-1');
    assert.notEqual(foreign.code, 0, foreign.out);
    assert.match(foreign.out, /not owned by requested user/);
    assert.doesNotMatch(readFileSync('/proc/mounts', 'utf8'), new RegExp(` ${home}/Private `));
    assert.equal(readFileSync(`/dev/shm/ecryptfs-${USER}-Private`, 'utf8').trim(), '0', 'the counter went back');
    sh(`chown ${USER}: ${home}/.Private`);
  } finally {
    sh(`fusermount3 -uz ${home}/Private 2>/dev/null; umount -l ${home}/Private 2>/dev/null; rm -f /dev/shm/ecryptfs-${USER}-Private; userdel -r ${USER} 2>/dev/null`);
  }
});

test('setup-private -w -n --noautomount: a wrapping passphrase of its own, typed twice, no filename encryption', { skip }, async () => {
  openDevFuse();
  const WUSER = 'ecryptfs-wrap-test';
  const { home } = freshUser(WUSER, 'the-login-password');
  const dot = join(home, '.ecryptfs');
  try {
    // Mismatched wrapping passphrases are refused (nothing can check them but the user's typing).
    const mismatch = runAs(WUSER, tool('ecryptfs-setup-private', '-w -n --noautomount'), 'wrap-one\nwrap-two\nwrap-one\nwrap-two\nwrap-one\nwrap-two\n');
    assert.notEqual(mismatch.code, 0);
    assert.match(mismatch.out, /Wrapping passphrases must match/);
    assert.ok(!existsSync(join(dot, 'wrapped-passphrase')));

    // The same twice, then a blank mount passphrase: one is generated.
    const setup = runAs(WUSER, tool('ecryptfs-setup-private', '-w -n --noautomount'), 'my-wrapping-pw\nmy-wrapping-pw\n\n');
    assert.equal(setup.code, 0, setup.out);
    assert.match(setup.out, new RegExp(`INFO: ${home}/Private will not be mounted on login`));
    assert.ok(existsSync(join(dot, 'wrapping-independent')));
    assert.ok(!existsSync(join(dot, 'auto-mount')));
    assert.ok(existsSync(join(dot, 'auto-umount')));
    assert.equal(readFileSync(join(dot, 'Private.sig'), 'utf8').split('\n').filter(Boolean).length, 1, 'no FNEK sig with -n');
    // The login password does not open it; the wrapping passphrase does (real tool agrees).
    const real = (pw: string) => spawnSync('ecryptfs-unwrap-passphrase', [join(dot, 'wrapped-passphrase'), '-'], { input: pw, encoding: 'utf8' });
    assert.notEqual(real('the-login-password').status, 0);
    assert.match(real('my-wrapping-pw').stdout.trim(), /^[0-9a-f]{32}$/, 'a generated 128-bit mount passphrase');

    const m = runAs(WUSER, `${tool('ecryptfs-mount-private')} && echo plain-name > ${home}/Private/visible-name.txt && ${tool('ecryptfs-umount-private')}`, 'my-wrapping-pw\n');
    assert.equal(m.code, 0, m.out);
    assert.deepEqual(readdirSync(join(home, '.Private')), ['visible-name.txt'], 'names are not encrypted with -n');
    assert.ok(!readFileSync(join(home, '.Private', 'visible-name.txt')).includes('plain-name'), 'contents are');
  } finally {
    sh(`fusermount3 -uz ${home}/Private 2>/dev/null; rm -f /dev/shm/ecryptfs-${WUSER}-Private; pkill -9 -u ${WUSER}; userdel -r ${WUSER} 2>/dev/null`);
  }
});
