/** ecryptfs-utils' kernel regression cases, through our mount. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { mountSkipReason, mountVolume, withRemount } from './harness.js';

const skip = mountSkipReason();

test('LP #870326: pages of a shared mmap modified after close() are written back', { skip }, async () => {
  const m = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y');
  try {
    const f = join(m.upper, 'mapped');
    await fsp.writeFile(f, Buffer.alloc(3 * 4096, 0x61));
    const py = `import mmap,os
fd=os.open(${JSON.stringify(f)},os.O_RDWR)
mm=mmap.mmap(fd,3*4096)
os.close(fd)
mm[5000:5005]=b'HELLO'
mm.flush()
mm.close()`;
    const r = spawnSync('python3', ['-c', py], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const data = await fsp.readFile(f);
    assert.equal(data.subarray(5000, 5005).toString(), 'HELLO');
    await withRemount(m, 'ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y', async (again) => {
      const d2 = await fsp.readFile(join(again.upper, 'mapped'));
      assert.equal(d2.length, 3 * 4096);
      assert.equal(d2.subarray(5000, 5005).toString(), 'HELLO', 'written to the lower file, not only cached');
    });
  } finally {
    await m.cleanup();
  }
});

test('LP #509180 / #842647: no trailing garbage or duplicated blocks after truncates and extending writes', { skip }, async () => {
  const m = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n');
  try {
    const f = join(m.upper, 'f');
    await fsp.writeFile(f, Buffer.alloc(10000, 0x62));
    await fsp.truncate(f, 4100);
    await fsp.appendFile(f, Buffer.alloc(10, 0x63));
    await fsp.truncate(f, 20000);
    const d = await fsp.readFile(f);
    assert.equal(d.length, 20000);
    assert.ok(d.subarray(0, 4100).equals(Buffer.alloc(4100, 0x62)));
    assert.ok(d.subarray(4100, 4110).equals(Buffer.alloc(10, 0x63)));
    assert.ok(d.subarray(4110).equals(Buffer.alloc(20000 - 4110)), 'zeros past the old end, no stale bytes');
    assert.equal((await fsp.stat(join(m.lower, 'f'))).size, 8192 + 5 * 4096);
  } finally {
    await m.cleanup();
  }
});
