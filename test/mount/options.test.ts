/** Mount options through real mounts: xattr metadata, encrypted view, separate filename cipher, ro, verbosity=0. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { hasMarker } from '../../src/format/header.js';
import { getXattrIfAny } from '../../src/lower/xattr.js';
import { mountSkipReason, mountVolume, withRemount } from './harness.js';
import { ecryptfs } from '../cli/run.js';

const skip = mountSkipReason();

test('ecryptfs_xattr_metadata keeps headers in user.ecryptfs; ecryptfs_encrypted_view shows the portable form read-only', { skip }, async () => {
  const m = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n,ecryptfs_xattr_metadata,verbosity=0');
  try {
    await fsp.writeFile(join(m.upper, 'doc'), 'xattr metadata\n');
    const lower = await fsp.readFile(join(m.lower, 'doc'));
    assert.equal(lower.length, 4096, 'only the data extent is in the lower file');
    assert.ok(!hasMarker(lower));
    const x = await getXattrIfAny(join(m.lower, 'doc'), 'user.ecryptfs');
    assert.ok(x && hasMarker(x) && (x.readUInt32BE(16) & 0x04) !== 0, 'header in the xattr, flag 0x04');
    await withRemount(m, 'ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n,ecryptfs_encrypted_view', async (v) => {
      const view = await fsp.readFile(join(v.upper, 'doc'));
      assert.equal(view.length, 8192 + 4096);
      assert.ok(hasMarker(view) && (view.readUInt32BE(16) & 0x04) === 0, 'an in-file header, xattr flag cleared');
      await assert.rejects(fsp.writeFile(join(v.upper, 'doc'), 'x'), { code: 'EROFS' });
      // The encrypted view is a portable eCryptfs file: it decrypts offline.
      const copy = join(v.root, 'portable');
      await fsp.mkdir(copy);
      await fsp.writeFile(join(copy, 'doc'), view);
      await fsp.writeFile(join(v.root, 'p'), 'mount-test-passphrase\n');
      const d = await ecryptfs(['decrypt', copy, '-o', join(v.root, 'out'), '--passphrase-file', join(v.root, 'p')]);
      assert.equal(d.code, 0, d.stderr);
      assert.equal(await fsp.readFile(join(v.root, 'out', 'doc'), 'utf8'), 'xattr metadata\n');
    });
  } finally {
    await m.cleanup();
  }
});

test('ecryptfs_fn_cipher / ecryptfs_fn_key_bytes: names under another cipher than the contents; ro mounts', { skip }, async () => {
  const m = await mountVolume('ecryptfs_cipher=twofish,ecryptfs_key_bytes=32,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y,ecryptfs_fn_cipher=aes,ecryptfs_fn_key_bytes=16');
  try {
    await fsp.writeFile(join(m.upper, 'name under aes'), 'contents under twofish');
    const [lowerName] = await fsp.readdir(m.lower);
    assert.ok(lowerName.startsWith('ECRYPTFS_FNEK_ENCRYPTED.'));
    const head = await fsp.readFile(join(m.lower, lowerName));
    assert.equal(head[0x1d], 0x0a, 'Tag 3 cipher code of twofish');
    await withRemount(m, 'ecryptfs_cipher=twofish,ecryptfs_key_bytes=32,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y,ecryptfs_fn_cipher=aes,ecryptfs_fn_key_bytes=16,ro', async (ro) => {
      assert.equal(await fsp.readFile(join(ro.upper, 'name under aes'), 'utf8'), 'contents under twofish');
      await assert.rejects(fsp.writeFile(join(ro.upper, 'x'), 'x'), { code: 'EROFS' });
    });
  } finally {
    await m.cleanup();
  }
});
