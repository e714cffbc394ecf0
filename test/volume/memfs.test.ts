/** The in-memory lower directory: a Volume works on it as on a disk, byte for byte the same lower files. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { MemLowerFs } from '../helpers/memlowerfs.js';
import type { LowerFs, LowerReader } from '../../src/lower/lowerfs.js';
import { NodeLowerFs } from '../../src/lower/lowerfs.js';
import { KeyRing } from '../../src/volume/keyring.js';
import { Volume } from '../../src/volume/volume.js';
import { tempDir } from '../helpers/fixtures.js';

const ring = new KeyRing();
const [fileKey, fnekKey] = ring.addPassphraseSync('memfs-pass');

// Every LowerFs is a LowerReader: the read side is the small, Node-type-free part.
const asReader = (l: LowerFs): LowerReader => l;

test('a volume on the in-memory lower reads back what it wrote, and its lower bytes equal the disk ones', async () => {
  const mem = new MemLowerFs();
  const vol = await Volume.open(mem, ring, { cipher: 'aes', keyBytes: 16, sigs: [fileKey.sig], fnekSig: fnekKey.sig });
  const data = randomBytes(70000);
  await vol.mkdir('dir');
  await vol.writeFile('dir/f', data);
  await vol.symlink('dir/f', 'link');
  assert.deepEqual(await vol.readFile('dir/f'), data);
  assert.equal(await vol.readlink('link'), 'dir/f');
  assert.deepEqual((await vol.readdir('')).map((e) => e.name).sort(), ['dir', 'link']);
  await vol.truncate('dir/f', 5000);
  assert.deepEqual(await vol.readFile('dir/f'), data.subarray(0, 5000));
  // The same lower file read through the small read interface decrypts on disk too.
  const reader = asReader(mem);
  const lowerDir = (await reader.readdir('')).find((n) => n.startsWith('ECRYPTFS_FNEK_ENCRYPTED.') && n !== vol.lowerPath('link'))!;
  const lowerName = (await reader.readdir(lowerDir))[0];
  const st = await reader.lstat(`${lowerDir}/${lowerName}`);
  assert.ok(st.isFile());
  const bytes = Buffer.alloc(st.size);
  const f = await reader.open(`${lowerDir}/${lowerName}`, 'r');
  assert.equal(await f.read(bytes, 0, st.size, 0), st.size);
  await f.close();
  const dir = tempDir();
  try {
    const disk = new NodeLowerFs(dir.path);
    await disk.mkdir(lowerDir, 0o755);
    const out = await disk.open(`${lowerDir}/${lowerName}`, 'create-exclusive', 0o644);
    await out.write(bytes, 0, bytes.length, 0);
    await out.close();
    const onDisk = await Volume.open(dir.path, ring, { readOnly: true });
    assert.deepEqual(await onDisk.readFile('dir/f'), data.subarray(0, 5000));
  } finally {
    dir.cleanup();
  }
});

test('random writes on the in-memory lower match a model (property)', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(fc.nat(20000), fc.uint8Array({ maxLength: 9000 })), { minLength: 1, maxLength: 8 }), async (writes) => {
      const vol = await Volume.open(new MemLowerFs(), ring, { cipher: 'aes', keyBytes: 16, sigs: [fileKey.sig] });
      let model = Buffer.alloc(0);
      await vol.writeFile('f', Buffer.alloc(0));
      for (const [pos, data] of writes) {
        await vol.writeAt('f', pos, data);
        if (data.length === 0) continue;
        const next = Buffer.alloc(Math.max(model.length, pos + data.length));
        model.copy(next);
        next.set(data, pos);
        model = next;
      }
      assert.deepEqual(await vol.readFile('f'), model);
    }),
    { numRuns: 40 },
  );
});
