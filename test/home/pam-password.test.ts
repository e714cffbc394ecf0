/**
 * Password changes through the real PAM stack (pamtester): pam_unix changes the password and
 * pam_ecryptfs_ts.so hands old and new to our hook, which re-wraps wrapped-passphrase; the
 * next login with the new password mounts and reads everything back. Also the adduser flow: an
 * encrypted home set up with -b gets its passphrase wrapped when the user's first password is set.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freshUser, mountSkipReason, openDevFuse, runAs, sh } from '../mount/harness.js';
import { pamService, pamSkipReason, ROOT } from './pam-harness.js';

const SERVICE = 'ecryptfs-ts-pw-test';
const SERVICE_FILE = `/etc/pam.d/${SERVICE}`;
const skip = mountSkipReason() || pamSkipReason() || (sh('command -v ecryptfs-unwrap-passphrase').code !== 0 ? 'needs ecryptfs-utils (apt-get install ecryptfs-utils)' : false);

const writeService = () => writeFileSync(SERVICE_FILE, pamService());

const pamtester = (user: string, ops: string[], input = '', asUid?: number) => {
  // passwd is setuid root: real uid the user's, effective uid root. setpriv --ruid gives pamtester
  // the same, so pam_unix asks for (and PAM carries) the old password as it does for passwd.
  const cmd = asUid === undefined ? 'pamtester' : 'setpriv';
  const args = asUid === undefined ? [SERVICE, user, ...ops] : [`--ruid=${asUid}`, 'pamtester', SERVICE, user, ...ops];
  const r = spawnSync(cmd, args, { input, encoding: 'utf8' });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
};
const realUnwrap = (file: string, pw: string) => spawnSync('ecryptfs-unwrap-passphrase', [file, '-'], { input: pw, encoding: 'utf8' });
const mountedAt = (dir: string) => readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === dir && l.split(' ')[2] === 'fuse.ecryptfs');
const asUser = (user: string, cmd: string) => runAs(user, cmd);
const tool = (name: string) => `${process.execPath} --openssl-legacy-provider ${join(ROOT, 'bin', `${name}.js`)}`;

test('passwd through PAM re-wraps the mount passphrase; the new password logs in, the old one no longer unwraps', { skip, timeout: 120_000 }, async () => {
  openDevFuse();
  const USER = 'ecryptfs-pw-user';
  const { home, uid, gid } = freshUser(USER, 'first-login-pw');
  writeService();
  try {
    for (const [f, v] of [['lp', 'first-login-pw'], ['mp', 'pw-test-mount-pass-0123456789ab']]) {
      writeFileSync(join(home, f), `${v}\n`, { mode: 0o600 });
      chownSync(join(home, f), uid, gid);
    }
    const setup = asUser(USER, `${tool('ecryptfs-setup-private')} --loginpass-file ${home}/lp --mountpass-file ${home}/mp`);
    assert.equal(setup.code, 0, setup.out);
    rmSync(join(home, 'lp'));
    rmSync(join(home, 'mp'));
    const wrapped = join(home, '.ecryptfs/wrapped-passphrase');

    const login = pamtester(USER, ['authenticate', 'open_session'], 'first-login-pw\n');
    assert.equal(login.code, 0, login.out);
    assert.ok(mountedAt(join(home, 'Private')), 'mounted at login');
    assert.equal(asUser(USER, `printf 'kept across a password change' > ${home}/Private/note`).code, 0);
    assert.equal(pamtester(USER, ['close_session']).code, 0);
    assert.ok(!mountedAt(join(home, 'Private')), 'unmounted at logout');
    assert.ok(!sh(`cat ${home}/.Private/*`).out.includes('kept across'), 'the lower file is encrypted');

    // The user changes the password (old password asked, as passwd does).
    const before = readFileSync(wrapped);
    const pw = pamtester(USER, ['chauthtok'], 'first-login-pw\nsecond-login-pw\nsecond-login-pw\n', uid);
    assert.equal(pw.code, 0, pw.out);
    assert.ok(!readFileSync(wrapped).equals(before), 'wrapped-passphrase was re-wrapped');
    assert.equal(statSync(wrapped).mode & 0o777, 0o600);
    assert.equal(statSync(wrapped).uid, uid);
    // The real ecryptfs-utils agrees: the new password unwraps it, the old one does not.
    assert.equal(realUnwrap(wrapped, 'second-login-pw').stdout.trim(), 'pw-test-mount-pass-0123456789ab');
    assert.notEqual(realUnwrap(wrapped, 'first-login-pw').status, 0);

    sh(`setpriv --reuid=${uid} --regid=${gid} --clear-groups keyctl clear @u`);
    const old = pamtester(USER, ['authenticate'], 'first-login-pw\n');
    assert.notEqual(old.code, 0, 'the old password no longer logs in');
    const again = pamtester(USER, ['authenticate', 'open_session'], 'second-login-pw\n');
    assert.equal(again.code, 0, again.out);
    assert.equal(asUser(USER, `cat ${home}/Private/note`).out, 'kept across a password change');
    assert.equal(pamtester(USER, ['close_session']).code, 0);
    assert.ok(!mountedAt(join(home, 'Private')));

    // Root resets the password (no old password): the wrapped passphrase cannot be re-wrapped and
    // must be left intact, still opening with the previous password (as with pam_ecryptfs).
    const kept = readFileSync(wrapped);
    assert.equal(pamtester(USER, ['chauthtok'], 'third-login-pw\nthird-login-pw\n').code, 0);
    assert.ok(readFileSync(wrapped).equals(kept), 'left as it was');
    assert.equal(realUnwrap(wrapped, 'second-login-pw').stdout.trim(), 'pw-test-mount-pass-0123456789ab');
  } finally {
    rmSync(SERVICE_FILE, { force: true });
    sh(`fusermount3 -uz ${home}/Private 2>/dev/null; rm -f /dev/shm/ecryptfs-${USER}-Private; pkill -9 -u ${USER}; userdel -r ${USER} 2>/dev/null`);
  }
});

test('adduser-style encrypted home: setup-private -b, the first password set through PAM wraps it, login mounts the home', { skip, timeout: 120_000 }, async () => {
  openDevFuse();
  const USER = 'ecryptfs-boot-user';
  const { home, uid, gid } = freshUser(USER);
  const ecdir = `/home/.ecryptfs/${USER}`;
  const shm = `/dev/shm/.ecryptfs-${USER}`;
  writeService();
  try {
    // adduser --encrypt-home sets up the empty home before /etc/skel goes in.
    sh(`rm -rf ${ecdir} ${shm}; find ${home} -mindepth 1 -delete`);
    const setup = spawnSync(process.execPath, ['--openssl-legacy-provider', join(ROOT, 'bin/ecryptfs-setup-private.js'), '-b', '-u', USER], { encoding: 'utf8', input: '' });
    assert.equal(setup.status, 0, `${setup.stdout}${setup.stderr}`);
    assert.ok(!mountedAt(home), 'bootstrap leaves the home unmounted');
    assert.equal(readlinkSync(join(home, '.ecryptfs')), `${ecdir}/.ecryptfs`);
    assert.equal(readlinkSync(join(home, '.Private')), `${ecdir}/.Private`);
    assert.equal(readFileSync(`${ecdir}/.ecryptfs/Private.mnt`, 'utf8'), `${home}\n`);
    assert.equal(readFileSync(`${ecdir}/.ecryptfs/Private.sig`, 'utf8').split('\n').filter(Boolean).length, 2);
    assert.ok(existsSync(`${ecdir}/.ecryptfs/auto-mount`) && existsSync(`${ecdir}/.ecryptfs/auto-umount`));
    assert.ok(!existsSync(`${ecdir}/.ecryptfs/wrapped-passphrase`), 'nothing to wrap with yet');
    // Until then the mount passphrase waits in RAM, readable by the user only.
    const st = statSync(shm);
    assert.equal(st.mode & 0o777, 0o400);
    assert.equal(st.uid, uid);
    const mountPass = readFileSync(shm, 'utf8');
    assert.match(mountPass, /^[0-9a-f]{32}$/);

    // The administrator sets the first password (passwd USER): that wraps it.
    const pw = pamtester(USER, ['chauthtok'], 'boot-login-pw\nboot-login-pw\n');
    assert.equal(pw.code, 0, pw.out);
    assert.ok(!existsSync(shm), 'the clear passphrase is gone from /dev/shm');
    const wrapped = `${ecdir}/.ecryptfs/wrapped-passphrase`;
    assert.equal(statSync(wrapped).mode & 0o777, 0o600);
    assert.equal(realUnwrap(wrapped, 'boot-login-pw').stdout.trim(), mountPass);

    // First login: the whole home is the encrypted mount, with the links inside it.
    const login = pamtester(USER, ['authenticate', 'open_session'], 'boot-login-pw\n');
    assert.equal(login.code, 0, login.out);
    assert.ok(mountedAt(home), 'the home is mounted');
    assert.equal(asUser(USER, `printf 'my first file' > ${home}/hello && readlink ${home}/.ecryptfs`).out.trim(), `${ecdir}/.ecryptfs`);
    // A second login while the first is open: the first logout must leave the home mounted.
    assert.equal(pamtester(USER, ['authenticate', 'open_session'], 'boot-login-pw\n').code, 0);
    assert.equal(pamtester(USER, ['close_session']).code, 0);
    assert.ok(mountedAt(home), 'still mounted while a session remains');
    assert.equal(pamtester(USER, ['close_session']).code, 0);
    assert.ok(!mountedAt(home), 'unmounted at logout');
    const lower = sh(`ls ${ecdir}/.Private`).out;
    assert.match(lower, /ECRYPTFS_FNEK_ENCRYPTED\./);
    assert.ok(!sh(`cat ${ecdir}/.Private/ECRYPTFS_FNEK_ENCRYPTED.*`).out.includes('my first file'), 'encrypted on disk');
    sh(`setpriv --reuid=${uid} --regid=${gid} --clear-groups keyctl clear @u`);
    assert.equal(pamtester(USER, ['authenticate', 'open_session'], 'boot-login-pw\n').code, 0);
    assert.equal(asUser(USER, `cat ${home}/hello`).out, 'my first file');
    assert.equal(pamtester(USER, ['close_session']).code, 0);
  } finally {
    rmSync(SERVICE_FILE, { force: true });
    sh(`fusermount3 -uz ${home} 2>/dev/null; rm -f ${shm} /dev/shm/ecryptfs-${USER}-Private; pkill -9 -u ${USER}; userdel -r ${USER} 2>/dev/null; rm -rf ${ecdir} ${home}`);
  }
});
