/**
 * Login through the real PAM stack (Debian's pamtester and pam_ecryptfs_ts.so): authentication unwraps the
 * mount passphrase into the user's keyring, the session mounts ~/Private, closing it unmounts and
 * the lower files stay encrypted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mountSkipReason, openDevFuse, sh, freshUser } from '../mount/harness.js';
import { pamService, pamSkipReason, ROOT } from './pam-harness.js';

const USER = 'ecryptfs-pam-user';
const SERVICE = '/etc/pam.d/ecryptfs-ts-test';
const skip = mountSkipReason() || pamSkipReason();

const asUser = (cmd: string) => {
  const r = spawnSync('su', [USER, '-s', '/bin/sh', '-c', `cd /tmp && ${cmd}`], { encoding: 'utf8' });
  // pam_ecryptfs from the real ecryptfs-utils may chime in at su's session start: not ours.
  const out = `${r.stdout}${r.stderr}`.split('\n').filter((l) => !/Signature not found in user keyring|Perhaps try the interactive/.test(l)).join('\n');
  return { code: r.status ?? -1, out };
};
const pamtester = (ops: string[], input = '') => spawnSync('pamtester', ['ecryptfs-ts-test', USER, ...ops], { input, encoding: 'utf8' });
const mounted = (home: string) => readFileSync('/proc/mounts', 'utf8').includes(` ${home}/Private fuse.ecryptfs `);

test('PAM login mounts the Private directory, logout unmounts it', { skip }, async () => {
  openDevFuse();
  const { home } = freshUser(USER, 'login-pw');
  writeFileSync(SERVICE, pamService());
  try {
    const uid = Number(sh(`id -u ${USER}`).out.trim());
    const gid = Number(sh(`id -g ${USER}`).out.trim());
    for (const [f, v] of [['lp', 'login-pw'], ['mp', 'pam-mount-pass-0123456789abcdef']]) {
      writeFileSync(join(home, f), `${v}\n`);
      chownSync(join(home, f), uid, gid);
    }
    const setup = asUser(`${process.execPath} --openssl-legacy-provider ${join(ROOT, 'bin/ecryptfs-setup-private.js')} --loginpass-file ${home}/lp --mountpass-file ${home}/mp`);
    assert.equal(setup.code, 0, setup.out);
    rmSync(join(home, 'mp'));
    assert.equal(asUser('keyctl list @u').out.trim(), 'keyring is empty');
    const login = pamtester(['authenticate', 'open_session'], 'login-pw\n');
    assert.equal(login.status, 0, `${login.stdout}${login.stderr}`);
    assert.ok(mounted(home), 'mounted at login');
    const w = asUser(`echo 'written in a PAM session' > ${home}/Private/note && cat ${home}/Private/note`);
    assert.match(w.out, /written in a PAM session/);
    const logout = pamtester(['close_session']);
    assert.equal(logout.status, 0);
    assert.ok(!mounted(home), 'unmounted at logout');
    const lower = sh(`ls ${home}/.Private`).out.trim();
    assert.match(lower, /^ECRYPTFS_FNEK_ENCRYPTED\./);
    assert.ok(!sh(`cat ${home}/.Private/*`).out.includes('written in a PAM session'), 'the lower file is encrypted');
    // A wrong password at login neither mounts nor adds keys; the right one again reads everything back.
    pamtester(['authenticate', 'open_session'], 'not-the-password\n');
    assert.ok(!mounted(home));
    const again = pamtester(['authenticate', 'open_session'], 'login-pw\n');
    assert.equal(again.status, 0);
    assert.match(asUser(`cat ${home}/Private/note`).out, /written in a PAM session/);
    pamtester(['close_session']);
    assert.ok(!mounted(home));
  } finally {
    rmSync(SERVICE, { force: true });
    sh(`fusermount3 -uz ${home}/Private 2>/dev/null; umount -l ${home}/Private 2>/dev/null; rm -f /dev/shm/ecryptfs-${USER}-Private; userdel -r ${USER} 2>/dev/null`);
  }
});
