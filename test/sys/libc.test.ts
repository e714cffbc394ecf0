/**
 * The system calls of src/sys/libc.ts: mount options split as mount(8) splits them, and the
 * kernel keyring through add_key(2)/keyctl(2) (src/sys/keyring.ts) checked against keyutils' keyctl.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { isPageAligned, mountFlags, pageAlignedBuffer } from '../../src/sys/libc.js';
import { addKey, findKey, keyringAvailable, listSigs, readKey, readKeySync, unlinkKey } from '../../src/sys/keyring.js';

test('mountFlags: generic options become MS_* flags (later ones win), the rest stays data in order', () => {
  assert.deepEqual(mountFlags(['fd=5', 'rootmode=40000', 'ro', 'nosuid', 'nodev', 'noexec', 'allow_other', 'default_permissions']), {
    flags: 1 | 2 | 4 | 8,
    data: 'fd=5,rootmode=40000,allow_other,default_permissions',
  });
  assert.deepEqual(mountFlags(['nosuid', 'suid', 'noatime', 'relatime', 'nosymfollow', 'context=system_u:object_r:tmp_t:s0']), {
    flags: 1024 | (1 << 21) | 256,
    data: 'context=system_u:object_r:tmp_t:s0',
  });
  assert.deepEqual(mountFlags(['ro', 'rw', 'sync', 'async', 'dirsync', 'strictatime', 'lazytime']), { flags: 128 | (1 << 24) | (1 << 25), data: '' });
});

const keyctl = (...args: string[]) => spawnSync('keyctl', args, { encoding: 'utf8' });
const skip = spawnSync('sh', ['-c', 'command -v keyctl']).status !== 0 ? 'keyutils (keyctl) is not installed' : false;

test('keyring calls: add, find, read, list and unlink a user key as keyctl sees it', { skip }, async () => {
  assert.equal(await keyringAvailable(), true);
  const sig = randomBytes(8).toString('hex');
  const payload = randomBytes(740);
  try {
    assert.equal(await findKey(sig), undefined);
    assert.equal(await addKey(sig, payload), true);
    assert.equal(await addKey(sig, Buffer.from('other')), false, 'an existing key is kept');
    const id = await findKey(sig);
    assert.equal(keyctl('search', '@u', 'user', sig).stdout.trim(), String(id));
    assert.deepEqual(spawnSync('keyctl', ['pipe', String(id)]).stdout, payload);
    assert.deepEqual(await readKey(sig), payload);
    assert.deepEqual(readKeySync(sig), payload);
    assert.ok((await listSigs()).includes(sig));
    assert.equal(await unlinkKey(sig), true);
    assert.equal(await unlinkKey(sig), false);
    assert.equal(keyctl('search', '@u', 'user', sig).status, 1);
    assert.equal(await readKey(sig), undefined);
    // and a key keyctl added is read back
    assert.equal(spawnSync('keyctl', ['padd', 'user', sig, '@u'], { input: payload }).status, 0);
    assert.deepEqual(await readKey(sig), payload);
    assert.equal(await unlinkKey(sig), true);
  } finally {
    keyctl('purge', '-s', 'user', sig);
  }
});

test('isPageAligned: true only for page boundaries of memory pageAlignedBuffer made', () => {
  const b = pageAlignedBuffer(3 * 4096);
  assert.ok(isPageAligned(b, 0) && isPageAligned(b, 4096) && isPageAligned(b.subarray(4096), 4096));
  assert.ok(!isPageAligned(b, 512) && !isPageAligned(b.subarray(1), 0));
  assert.ok(!isPageAligned(Buffer.alloc(3 * 4096), 0), 'memory of unknown alignment');
});
