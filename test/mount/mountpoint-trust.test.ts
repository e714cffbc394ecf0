/**
 * Root mounts on the directory it was given, never through a user's symbolic link: a user who
 * owns a directory on the way to the mount point could put a link there (or swap one in while the
 * launcher waits) and have root mount the user's files over /etc. mount(2) is called on the
 * mount point's descriptor, walked to following root's links only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, lchownSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { mountDevAt } from '../../src/sys/mounts.js';
import { join } from 'node:path';
import { tempDir } from '../helpers/fixtures.js';
import { isMounted, mountSkipReason, openDevFuse, sh } from './harness.js';
import { ecryptfs } from '../cli/run.js';

const skip = mountSkipReason();

test('root refuses to mount through a symbolic link a user owns, and mounts nothing where it points', { skip }, async () => {
  openDevFuse();
  const t = tempDir('etmptrust-');
  try {
    const lower = join(t.path, 'lower');
    const target = join(t.path, 'roots-dir');
    const users = join(t.path, 'users');
    mkdirSync(lower);
    mkdirSync(target);
    mkdirSync(users);
    // A directory of another user (any id will do) holding that user's link to root's directory.
    chownSync(users, 54321, 54321);
    chmodSync(users, 0o755);
    symlinkSync(target, join(users, 'mnt'));
    lchownSync(join(users, 'mnt'), 54321, 54321);
    const pw = join(t.path, 'pw');
    sh(`printf 'passphrase_passwd=etmptrust-pass\\n' > ${pw}; chmod 600 ${pw}`);
    const r = await ecryptfs(['mount', lower, join(users, 'mnt'), '-o', `key=passphrase:passphrase_passwd_file=${pw},no_sig_cache,ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n`]);
    assert.notEqual(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stderr + r.stdout, /symbolic link that is not root's/);
    assert.ok(!isMounted(target), 'nothing is mounted where the link points');
    // Root's own link on the way is followed, as before.
    const rootsLink = join(t.path, 'roots-link');
    symlinkSync(target, rootsLink);
    const ok = await ecryptfs(['mount', lower, rootsLink, '-o', `key=passphrase:passphrase_passwd_file=${pw},no_sig_cache,ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n`]);
    assert.equal(ok.code, 0, ok.stdout + ok.stderr);
    assert.ok(isMounted(target));
    // The daemon finds that mount in the kernel's table under the real path and raises its readahead.
    const bdi = `/sys/class/bdi/${mountDevAt(target)}/read_ahead_kb`;
    if (existsSync(bdi) && !readFileSync('/proc/mounts', 'utf8').includes(' /sys sysfs ro')) {
      for (let i = 0; i < 50 && readFileSync(bdi, 'utf8').trim() !== '4096'; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(readFileSync(bdi, 'utf8').trim(), '4096');
    }
    sh(`umount ${target}`);
  } finally {
    if (isMounted(join(t.path, 'roots-dir'))) sh(`umount -l ${join(t.path, 'roots-dir')}`);
    t.cleanup();
  }
});
