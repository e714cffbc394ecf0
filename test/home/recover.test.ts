/** ecryptfs-recover-private on a home made by the real ecryptfs-utils, without the kernel module. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mountSkipReason, sh } from '../mount/harness.js';
import { manifest, tempDir, unpackLower } from '../helpers/fixtures.js';
import { tool } from '../cli/run.js';

const skip = mountSkipReason() || (sh('keyctl show @u').code !== 0 ? 'no kernel keyring (keyctl)' : false);

test('recovers a real ecryptfs-setup-private directory with the LOGIN passphrase and mounts it read-only', { skip }, async () => {
  const m = manifest('setup-private') as unknown as { login_passphrase: string; passphrase: string; dot_ecryptfs: Record<string, { hex: string | null }>; files: Array<{ path: string; type: string; sha256?: string }> };
  const t = tempDir('ecryptfs-recover-');
  const lower = await unpackLower('setup-private');
  let mp = '';
  try {
    const priv = join(t.path, 'home', '.Private');
    await fsp.mkdir(join(t.path, 'home', '.ecryptfs'), { recursive: true });
    await fsp.cp(lower.path, priv, { recursive: true });
    await fsp.writeFile(join(t.path, 'home', '.ecryptfs', 'wrapped-passphrase'), Buffer.from(m.dot_ecryptfs['wrapped-passphrase'].hex!, 'hex'));
    const r = await tool('ecryptfs-recover-private', [priv], `y\ny\n${m.login_passphrase}\n`);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /INFO: Found your wrapped-passphrase/);
    mp = /INFO: Success! {2}Private data mounted at \[(.*)\]\./.exec(r.stdout)?.[1] ?? '';
    assert.ok(mp.startsWith('/tmp/ecryptfs.'), r.stdout);
    for (const f of m.files.filter((x) => x.type === 'file' && x.sha256)) {
      assert.equal(createHash('sha256').update(readFileSync(join(mp, f.path))).digest('hex'), f.sha256, f.path);
    }
    await assert.rejects(fsp.writeFile(join(mp, 'x'), 'x'), { code: 'EROFS' });
    const wrong = await tool('ecryptfs-recover-private', [priv], 'y\ny\nwrong password\n');
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /does not unwrap the mount passphrase/);
  } finally {
    if (mp) sh(`umount ${mp} || umount -l ${mp}; rmdir ${mp}`);
    lower.cleanup();
    t.cleanup();
  }
});
