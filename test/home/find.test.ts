/** ecryptfs-find maps a clear name to its lower name and back through a mount. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { mountSkipReason, mountVolume } from '../mount/harness.js';
import { tool } from '../cli/run.js';

const skip = mountSkipReason();

test('ecryptfs-find: clear name -> lower name and lower name -> clear name, by inode', { skip }, async () => {
  const m = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y');
  try {
    await fsp.mkdir(join(m.upper, 'dir'));
    await fsp.writeFile(join(m.upper, 'dir', 'report.txt'), 'x');
    const [lowerDir] = await fsp.readdir(m.lower);
    const [lowerFile] = await fsp.readdir(join(m.lower, lowerDir));
    const up = await tool('ecryptfs-find', [join(m.lower, lowerDir, lowerFile)]);
    assert.equal(up.code, 0, up.stderr);
    assert.equal(up.stdout.trim(), join(m.upper, 'dir', 'report.txt'));
    const down = await tool('ecryptfs-find', [join(m.upper, 'dir', 'report.txt')]);
    assert.equal(down.stdout.trim(), join(m.lower, lowerDir, lowerFile));
    const none = await tool('ecryptfs-find', ['/nonexistent']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /ERROR: \[\/nonexistent\] not found/);
  } finally {
    await m.cleanup();
  }
});
