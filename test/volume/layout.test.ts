/**
 * What the encoder writes has the kernel's layout: re-encrypting a kernel-made corpus tree with
 * the same passphrase and options gives the same lower names, symlink targets and lower sizes,
 * and headers equal field by field (all but the random marker and the random file key).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { parseHeader } from '../../src/format/header.js';
import { KeyRing } from '../../src/volume/keyring.js';
import { Volume } from '../../src/volume/volume.js';
import { decryptTree, encryptTree } from '../../src/volume/tree.js';
import type { CipherName } from '../../src/crypto/types.js';
import { manifest, tempDir, unpackLower } from '../helpers/fixtures.js';

const CASES = ['aes128-plain', 'aes256-fnek', 'aes128-fnek-addpassphrase', 'blowfish-448', 'des3_ede-192', 'cast5-128', 'blowfish-128', 'aes128-fnek-edge'];

async function headerOf(path: string) {
  const b = await fsp.readFile(path);
  return { h: parseHeader(b.subarray(0, 4096)), raw: b.subarray(0, 8192), size: b.length };
}

for (const c of CASES) {
  test(`encrypt reproduces the kernel's layout of ${c}`, async () => {
    const m = manifest(c);
    const kernelLower = await unpackLower(c);
    const clear = tempDir();
    const ours = tempDir();
    try {
      const ring = new KeyRing();
      const [file] = await ring.addPassphrase(m.passphrase);
      const kvol = await Volume.open(kernelLower.path, ring, { readOnly: true });
      const dec = await decryptTree(kvol, [''], clear.path);
      assert.deepEqual(dec.problems, []);
      const vol = await Volume.open(ours.path, ring, {
        cipher: m.cipher as CipherName,
        keyBytes: m.key_bytes,
        sigs: [file.sig],
        fnekSig: m.filename_encryption ? m.sigs.ecryptfs_fnek_sig : null,
      });
      const enc = await encryptTree(vol, [clear.path]);
      assert.deepEqual(enc.problems, []);
      for (const f of m.files) {
        if (!f.lower) continue;
        const ourLower = join(ours.path, f.lower);
        const st = await fsp.lstat(ourLower);
        if (f.type === 'symlink') {
          assert.equal(await fsp.readlink(ourLower), f.lower_symlink_target ?? f.symlink_target, `lower target of ${f.path}`);
        } else if (f.type === 'file') {
          const k = await headerOf(join(kernelLower.path, f.lower));
          const o = await headerOf(ourLower);
          assert.equal(o.size, k.size, `lower size of ${f.path}`);
          assert.equal(st.size, f.lower_size ?? k.size);
          for (const field of ['size', 'version', 'flags', 'extentSize', 'headerExtents', 'metadataSize'] as const) {
            assert.equal(o.h[field], k.h[field], `${field} of ${f.path}`);
          }
          assert.equal(o.h.keys.length, k.h.keys.length);
          const [ok, kk] = [o.h.keys[0], k.h.keys[0]];
          assert.equal(ok.sig, kk.sig);
          assert.equal(ok.cipherCode, kk.cipherCode);
          assert.deepEqual(ok.salt, kk.salt);
          assert.equal(ok.encryptedKey.length, kk.encryptedKey.length);
          // Byte-level: everything but marker (8..15) and encrypted key is identical.
          const keyAt = o.raw.indexOf(ok.encryptedKey);
          const oz = Buffer.from(o.raw);
          const kz = Buffer.from(k.raw);
          oz.fill(0, 8, 16);
          kz.fill(0, 8, 16);
          oz.fill(0, keyAt, keyAt + ok.encryptedKey.length);
          kz.fill(0, keyAt, keyAt + kk.encryptedKey.length);
          assert.ok(oz.equals(kz), `header bytes of ${f.path}`);
        } else if (f.type === 'dir') {
          assert.ok(st.isDirectory());
        }
      }
    } finally {
      kernelLower.cleanup();
      clear.cleanup();
      ours.cleanup();
    }
  });
}
