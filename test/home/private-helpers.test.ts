/**
 * mount.ecryptfs_private / umount.ecryptfs_private with ALIAS (~/.ecryptfs/ALIAS.conf and
 * ALIAS.sig) and without (Private), run as an ordinary user: the real helpers' checks (conf file
 * and mount point owned by the user, lower directory by ecryptfs_check_dev_ruid, keys already in
 * the keyring), the session counter /dev/shm/ecryptfs-USER-ALIAS, keys unlinked at the last
 * unmount; and ecryptfs-setup-private driven by LOGINPASS/MOUNTPASS in the environment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deriveKey, DEFAULT_SALT, FNEK_SALT } from '../../src/format/kdf.js';
import { unwrapPassphrase } from '../../src/format/wrapped.js';
import { freshUser, mountSkipReason, openDevFuse, runAs, sh } from '../mount/harness.js';

const BIN = fileURLToPath(new URL('../../../bin/', import.meta.url));
const skip = mountSkipReason() || (sh('command -v fusermount3 && keyctl show @u').code !== 0 ? 'needs fusermount3 (fuse3) and keyctl (keyutils)' : false);
const tool = (name: string, args = '') => `${process.execPath} --openssl-legacy-provider ${join(BIN, `${name}.js`)} ${args}`;
const mounted = (p: string) => readFileSync('/proc/mounts', 'utf8').split('\n').some((l) => l.split(' ')[1] === p);

async function until(cond: () => boolean): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

test('mount.ecryptfs_private ALIAS / umount.ecryptfs_private ALIAS: conf, sig, ownership checks and the session counter', { skip }, async () => {
  openDevFuse();
  const USER = 'etopt2';
  const { home } = freshUser(USER);
  const pass = 'alias-mount-passphrase';
  const [sig, fnek] = [deriveKey(pass, DEFAULT_SALT).sig, deriveKey(pass, FNEK_SALT).sig];
  const counter = `/dev/shm/ecryptfs-${USER}-vault`;
  try {
    const prep = runAs(USER, `mkdir -p ~/.ecryptfs ~/vault.lower ~/vault && printf '%s\\n' '${home}/vault.lower ${home}/vault ecryptfs' > ~/.ecryptfs/vault.conf && printf '${sig}\\n${fnek}\\n' > ~/.ecryptfs/vault.sig`);
    assert.equal(prep.code, 0, prep.out);
    const none = runAs(USER, tool('mount.ecryptfs_private', 'vault'));
    assert.notEqual(none.code, 0);
    assert.match(none.out, /Signature not found in user keyring\nPerhaps try the interactive 'ecryptfs-mount-private'/);
    assert.equal(runAs(USER, tool('ecryptfs-add-passphrase', '--fnek -'), pass).code, 0);
    const m1 = runAs(USER, `${tool('mount.ecryptfs_private', 'vault')} && echo secret > ~/vault/doc && ${tool('mount.ecryptfs_private', 'vault')}`);
    assert.equal(m1.code, 0, m1.out);
    assert.ok(mounted(`${home}/vault`));
    assert.equal(readFileSync(counter, 'utf8'), '2\n');
    assert.match(sh(`ls ${home}/vault.lower`).out, /^ECRYPTFS_FNEK_ENCRYPTED\./, 'names under the FNEK of vault.sig');
    const u1 = runAs(USER, tool('umount.ecryptfs_private', 'vault'));
    assert.notEqual(u1.code, 0);
    assert.match(u1.out, /Sessions still open, not unmounting/);
    assert.ok(mounted(`${home}/vault`));
    // A process still inside does not keep it mounted: the real helper unmounts lazily.
    const u2 = runAs(USER, `(cd ~/vault && sleep 2) & sleep 0.3; ${tool('umount.ecryptfs_private', 'vault')}`);
    assert.equal(u2.code, 0, u2.out);
    assert.ok(await until(() => !mounted(`${home}/vault`)));
    assert.equal(readFileSync(counter, 'utf8'), '0\n');
    assert.ok(await until(() => runAs(USER, 'keyctl list @u').out.trim() === 'keyring is empty'), 'keys unlinked at the last unmount');

    // The real helper's refusals: a conf file not the user's, a mount point not the user's, a
    // lower directory not the user's (ecryptfs_check_dev_ruid), mount options in the conf file.
    assert.equal(runAs(USER, tool('ecryptfs-add-passphrase', '--fnek -'), pass).code, 0);
    sh(`chown root ${home}/.ecryptfs/vault.conf`);
    assert.match(runAs(USER, tool('mount.ecryptfs_private', 'vault')).out, /Bad file[\s\S]*Error reading configuration file/);
    sh(`chown ${USER} ${home}/.ecryptfs/vault.conf && chown root ${home}/vault`);
    assert.match(runAs(USER, tool('mount.ecryptfs_private', 'vault')).out, /You do not own that mountpoint/);
    sh(`chown ${USER} ${home}/vault && chown root ${home}/vault.lower`);
    const ruid = runAs(USER, tool('mount.ecryptfs_private', 'vault'));
    assert.notEqual(ruid.code, 0);
    assert.match(ruid.out, /not owned by requested user/);
    assert.ok(!mounted(`${home}/vault`));
    sh(`chown ${USER} ${home}/vault.lower`);
    runAs(USER, `printf '%s\\n' '${home}/vault.lower ${home}/vault ecryptfs rw' > ~/.ecryptfs/vault.conf`);
    assert.match(runAs(USER, tool('mount.ecryptfs_private', 'vault')).out, /Mount options are not supported here/);
    assert.match(runAs(USER, tool('mount.ecryptfs_private', '../x')).out, /Invalid alias/);

    // Without ALIAS: ~/.Private on ~/Private with Private.sig; umount -f ignores the count.
    const def = runAs(USER, `mkdir -p ~/.Private ~/Private && printf '${sig}\\n${fnek}\\n' > ~/.ecryptfs/Private.sig && ${tool('mount.ecryptfs_private')} && ${tool('mount.ecryptfs_private')} && echo p > ~/Private/p && ${tool('umount.ecryptfs_private', '-d')} && ${tool('umount.ecryptfs_private', '-f')}`);
    assert.equal(def.code, 0, def.out);
    assert.ok(await until(() => !mounted(`${home}/Private`)));
    assert.equal(readFileSync(`/dev/shm/ecryptfs-${USER}-Private`, 'utf8'), '0\n');
  } finally {
    sh(`for d in vault Private; do fusermount3 -uz ${home}/$d 2>/dev/null; umount -l ${home}/$d 2>/dev/null; done; rm -f /dev/shm/ecryptfs-${USER}-*; pkill -9 -u ${USER}; userdel -r ${USER} 2>/dev/null`);
  }
});

test('ecryptfs-setup-private takes LOGINPASS and MOUNTPASS from the environment, as the real script does', { skip }, async () => {
  openDevFuse();
  const USER = 'etopt3';
  const { home } = freshUser(USER, 'env-login-password');
  try {
    const r = runAs(USER, `LOGINPASS=env-login-password MOUNTPASS=env-mount-passphrase-0123456789 ${tool('ecryptfs-setup-private')} </dev/null`);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /Testing succeeded\./);
    const sig = deriveKey('env-mount-passphrase-0123456789', DEFAULT_SALT).sig;
    assert.equal(readFileSync(join(home, '.ecryptfs', 'Private.sig'), 'utf8').split('\n')[0], sig);
    const wrapped = readFileSync(join(home, '.ecryptfs', 'wrapped-passphrase'));
    assert.equal(unwrapPassphrase(wrapped, Buffer.from('env-login-password')).toString(), 'env-mount-passphrase-0123456789');
    assert.ok(!existsSync(join(home, 'Private', 'ecryptfs.test')));
    // A wrong LOGINPASS is checked like a typed one.
    const bad = runAs(USER, `LOGINPASS=not-the-password MOUNTPASS=x ${tool('ecryptfs-setup-private', '--force')} </dev/null`);
    if (existsSync('/sbin/unix_chkpwd')) {
      assert.notEqual(bad.code, 0);
      assert.match(bad.out, /Your login passphrase is incorrect/);
    }
  } finally {
    sh(`fusermount3 -uz ${home}/Private 2>/dev/null; rm -f /dev/shm/ecryptfs-${USER}-*; pkill -9 -u ${USER}; userdel -r ${USER} 2>/dev/null`);
  }
});
