/**
 * A daemon killed with SIGKILL cannot unlink its keys (ecryptfs_unlink_sigs) nor remove its mount
 * record: `ecryptfs mounts` and `ecryptfs umount` clean up after it, sparing keys a live mount names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deriveKey, DEFAULT_SALT } from '../../src/format/kdf.js';
import { daemonAlive, type MountState } from '../../src/mount/state.js';
import { processStartTime } from '../../src/lower/creds.js';
import { freshUser, isMounted, mountSkipReason, openDevFuse, runAs, sh } from './harness.js';

const skip = mountSkipReason() || (sh('command -v fusermount3 && keyctl show @u').code !== 0 ? 'needs fusermount3 (fuse3) and keyctl (keyutils)' : false);
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const BIN = fileURLToPath(new URL('../../../bin/', import.meta.url));
const node = `${process.execPath} --openssl-legacy-provider`;
const OPTS = 'ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n,no_sig_cache,ecryptfs_unlink_sigs';

test('daemonAlive: the recorded pid with the recorded start time, not a pid reused by another process', () => {
  const rec = (start?: string): MountState => ({ lower: '/l', upper: '/u', pid: process.pid, options: '', sigs: [], unlinkSigs: false, start });
  assert.equal(daemonAlive(rec(processStartTime(process.pid))), true);
  assert.equal(daemonAlive(rec()), true, 'a record written before start times were kept: the pid alone');
  assert.equal(daemonAlive(rec('1')), false, 'same pid, another process');
  assert.equal(daemonAlive({ ...rec(), pid: 0x3fffffff }), false);
});

test('after a SIGKILLed daemon, `ecryptfs mounts` and `ecryptfs umount` unlink its keys (not those a live mount uses)', { skip }, async () => {
  openDevFuse();
  const USER = 'ettidy1';
  const { home, uid } = freshUser(USER);
  const pass = `dead-daemon-${process.pid}-${Date.now()}`;
  const sig = deriveKey(pass, DEFAULT_SALT).sig;
  const cli = (args: string) => runAs(USER, `${node} ${CLI} ${args}`);
  const keyed = () => runAs(USER, 'keyctl list @u').out.includes(sig);
  const pidOf = (upper: string) => Number(new RegExp(` on ${upper} type ecryptfs .*\\[pid (\\d+)\\]`).exec(cli('mounts').out)?.[1]);
  const mount = (upper: string) => {
    const r = runAs(USER, `${node} ${join(BIN, 'ecryptfs-add-passphrase.js')} - >/dev/null && mkdir -p ~/l ${upper} && ${node} ${CLI} mount ~/l ${upper} -o ecryptfs_sig=${sig},${OPTS} && echo x > ${upper}/f`, pass);
    assert.equal(r.code, 0, r.out);
  };
  // the user's mount goes with its daemon (fusermount3's auto_unmount); the keys stay
  const kill = async (pid: number, upper: string) => {
    assert.ok(pid > 0);
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 100 && (sh(`kill -0 ${pid}`).code === 0 || isMounted(upper)); i++) await new Promise((r) => setTimeout(r, 50));
  };
  try {
    // two mounts with the same key; one daemon is killed
    mount(`${home}/u`);
    mount(`${home}/u2`);
    await kill(pidOf(`${home}/u`), `${home}/u`);
    assert.ok(keyed(), 'a killed daemon leaves its key in @u');
    assert.doesNotMatch(cli('mounts').out, new RegExp(` on ${home}/u type`), 'a dead mount is not listed');
    assert.ok(keyed(), 'the key stays while a live mount names it');
    // the last one goes the usual way: its daemon unlinks the key
    assert.equal(cli(`umount ${home}/u2`).code, 0);
    assert.ok(!keyed(), 'unlinked by the live mount\'s unmount');
    assert.ok(!isMounted(`${home}/u`));

    // killed again, alone this time: `ecryptfs mounts` unlinks the key
    mount(`${home}/u`);
    await kill(pidOf(`${home}/u`), `${home}/u`);
    assert.ok(keyed());
    cli('mounts');
    assert.ok(!keyed(), '`ecryptfs mounts` unlinked the key of the dead daemon');

    // and `ecryptfs umount` of the dead mount does the same
    mount(`${home}/u`);
    await kill(pidOf(`${home}/u`), `${home}/u`);
    assert.ok(keyed());
    const u = cli(`umount ${home}/u`);
    assert.equal(u.code, 0, u.out);
    assert.ok(!isMounted(`${home}/u`));
    assert.ok(!keyed(), '`ecryptfs umount` unlinked the key of the dead daemon');
  } finally {
    sh(`for m in ${home}/u ${home}/u2; do fusermount3 -uz $m 2>/dev/null; umount -l $m 2>/dev/null; done; pkill -9 -u ${USER}; userdel -r ${USER} 2>/dev/null; rm -rf /tmp/ecryptfs-ts-${uid}`);
  }
});
