/** Every kernel-made corpus case decrypts byte-exact through the library: contents, names, links, sizes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { KeyRing } from '../../src/volume/keyring.js';
import { Volume } from '../../src/volume/volume.js';
import { corpusCases, manifest, unpackLower } from '../helpers/fixtures.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
// Cases whose lower dirs were changed behind the kernel's back (plain files in the lower dir).
const SPECIAL = new Set(['aes128-nonecryptfs-file', 'aes128-passthrough']);

for (const c of corpusCases().filter((c) => !SPECIAL.has(c))) {
  test(`corpus ${c}: every file, name and symlink target decrypts as the kernel read it`, async () => {
    const m = manifest(c);
    const lower = await unpackLower(c);
    const ring = new KeyRing();
    await ring.addPassphrase(m.passphrase);
    const vol = await Volume.open(lower.path, ring, { readOnly: true });
    try {
      assert.equal(vol.filenameEncryption, m.filename_encryption, 'filename encryption detected');
      if (m.filename_encryption) assert.equal(vol.fnekSig, m.sigs.ecryptfs_fnek_sig);
      let checked = 0;
      for (const f of m.files) {
        if (f.lower) assert.equal(vol.lowerPath(f.path), f.lower, `lower name of ${f.path}`);
        const st = await vol.stat(f.path);
        assert.equal(st.type, f.type, `type of ${f.path}`);
        if (f.type === 'file' && f.sha256) {
          const data = await vol.readFile(f.path);
          assert.equal(data.length, f.size, `size of ${f.path}`);
          assert.equal(st.size, f.size, `stat size of ${f.path}`);
          assert.equal(sha256(data), f.sha256, `contents of ${f.path}`);
          checked++;
        }
        if (f.type === 'symlink') {
          assert.equal(await vol.readlink(f.path), f.symlink_target, `target of ${f.path}`);
          assert.equal(st.size, Buffer.byteLength(f.symlink_target!), `lstat size of ${f.path}`);
        }
      }
      assert.ok(checked > 0 || m.files.length === 0);
      // Listing: every manifest entry appears under its clear name.
      const listed = new Set<string>();
      const walk = async (p: string): Promise<void> => {
        for (const e of await vol.readdir(p)) {
          assert.equal(e.error, undefined, `name ${e.lowerName} decodes`);
          const full = p === '' ? e.name : `${p}/${e.name}`;
          listed.add(full);
          if (e.type === 'dir') await walk(full);
        }
      };
      await walk('');
      for (const f of m.files) assert.ok(listed.has(f.path), `${f.path} listed`);
    } finally {
      vol.close();
      lower.cleanup();
    }
  });
}
