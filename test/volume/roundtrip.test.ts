/** Library round trips: every cipher and key size, sizes around extent boundaries, random writes against a model. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import fc from 'fast-check';
import type { CipherName } from '../../src/crypto/types.js';
import { hasMarker, parseHeader, unwrapFek } from '../../src/format/header.js';
import { lowerSizeFor } from '../../src/format/offsets.js';
import { KeyRing } from '../../src/volume/keyring.js';
import { Volume } from '../../src/volume/volume.js';
import { tempDir } from '../helpers/fixtures.js';

const ring = new KeyRing();
const [fileKey, fnekKey] = ring.addPassphraseSync('roundtrip-pass');

const CONFIGS: Array<[CipherName, number]> = [
  ['aes', 16], ['aes', 24], ['aes', 32], ['blowfish', 16], ['blowfish', 56], ['des3_ede', 24],
  ['twofish', 16], ['twofish', 32], ['cast6', 16], ['cast6', 32], ['cast5', 16],
];
const SIZES = [0, 1, 15, 16, 4095, 4096, 4097, 8191, 8192, 8193, 12289, 65541, 3 * 1024 * 1024 + 7];

for (const [cipher, keyBytes] of CONFIGS) {
  test(`${cipher}-${keyBytes}: files of every boundary size round-trip with the kernel's lower layout`, async () => {
    const dir = tempDir();
    try {
      const vol = await Volume.open(dir.path, ring, { cipher, keyBytes, sigs: [fileKey.sig], fnekSig: fnekKey.sig });
      for (const size of SIZES) {
        const data = randomBytes(size);
        const name = `file-${size}-é`;
        await vol.writeFile(name, data);
        assert.deepEqual(await vol.readFile(name), data, `contents of ${size}`);
        const lower = join(dir.path, vol.lowerPath(name));
        const st = await fsp.stat(lower);
        assert.equal(st.size, lowerSizeFor(size), `lower size for ${size}`);
        const h = parseHeader((await fsp.readFile(lower)).subarray(0, 4096));
        assert.equal(h.size, size);
        assert.equal(h.flags, 0x0a, 'flags: encrypted + encrypt filenames');
        assert.equal(h.keys[0].sig, fileKey.sig);
        assert.ok(vol.lowerPath(name).startsWith('ECRYPTFS_FNEK_ENCRYPTED.'));
      }
      // Names: the longest encryptable name, and one byte more.
      const longest = 'n'.repeat(vol.nameMax);
      await vol.writeFile(longest, Buffer.from('x'));
      assert.deepEqual(await vol.readFile(longest), Buffer.from('x'));
      assert.throws(() => vol.lowerPath(longest + 'n'), { code: 'ENAMETOOLONG' });
      // Symlinks with encrypted targets; directories.
      await vol.mkdir('sub');
      await vol.symlink('../some/target', 'sub/link');
      assert.equal(await vol.readlink('sub/link'), '../some/target');
      const names = (await vol.readdir('')).map((e) => e.name).sort();
      assert.ok(names.includes('sub') && names.includes(longest));
    } finally {
      dir.cleanup();
    }
  });
}

test('random writes, truncates and appends match an in-memory model (property)', async () => {
  const dir = tempDir();
  try {
    const vol = await Volume.open(dir.path, ring, { sigs: [fileKey.sig], fnekSig: null });
    const op = fc.oneof(
      fc.record({ kind: fc.constant('write' as const), pos: fc.oneof(fc.integer({ min: 0, max: 20000 }), fc.constantFrom(0, 4095, 4096, 4097, 8191, 8192)), len: fc.integer({ min: 0, max: 9000 }) }),
      fc.record({ kind: fc.constant('truncate' as const), pos: fc.integer({ min: 0, max: 20000 }), len: fc.constant(0) }),
      fc.record({ kind: fc.constant('append' as const), pos: fc.constant(0), len: fc.integer({ min: 1, max: 5000 }) }),
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), async (ops) => {
        const name = `model-${run++}`;
        await vol.writeFile(name, Buffer.alloc(0));
        let model = Buffer.alloc(0);
        const f = await vol.openFile(name, { write: true });
        try {
          for (const o of ops) {
            if (o.kind === 'truncate') {
              await f.truncate(o.pos, vol.keys, vol.newFileParams());
              model = o.pos <= model.length ? model.subarray(0, o.pos) : Buffer.concat([model, Buffer.alloc(o.pos - model.length)]);
            } else {
              const pos = o.kind === 'append' ? model.length : o.pos;
              const data = randomBytes(o.len);
              await f.write(pos, data, vol.keys, vol.newFileParams());
              if (data.length === 0) continue; // like pwrite(2): nothing written, nothing extended
              const end = Math.max(model.length, pos + data.length);
              const next = Buffer.alloc(end);
              model.copy(next);
              data.copy(next, pos);
              model = next;
            }
            assert.equal(f.size, model.length);
          }
        } finally {
          await f.close();
        }
        assert.deepEqual(await vol.readFile(name), model);
        const lowerSt = await fsp.stat(join(dir.path, name));
        assert.equal(lowerSt.size, lowerSizeFor(model.length), 'no sparse or stale lower tail');
        // Byte ranges through the stream API.
        if (model.length > 10) {
          const chunks: Buffer[] = [];
          for await (const c of vol.createReadStream(name, { start: 3, end: model.length - 2, chunkSize: 4096 })) chunks.push(c as Buffer);
          assert.deepEqual(Buffer.concat(chunks), model.subarray(3, model.length - 1));
        }
        await vol.unlink(name);
      }),
      { numRuns: 60 },
    );
  } finally {
    dir.cleanup();
  }
});

test('a write far past the end fills the gap with encrypted zeros, never a hole', async () => {
  const dir = tempDir();
  try {
    const vol = await Volume.open(dir.path, ring, { sigs: [fileKey.sig], fnekSig: null });
    await vol.writeFile('sparse', Buffer.alloc(0));
    await vol.writeAt('sparse', 3 * 1024 * 1024, Buffer.from('0123456789'));
    const lower = await fsp.readFile(join(dir.path, 'sparse'));
    assert.equal(lower.length, 3158016, 'same lower size as the kernel (corpus sparse-3MiB)');
    // No all-zero extent below: every extent is real ciphertext.
    for (let off = 8192; off < lower.length; off += 4096) {
      assert.ok(!lower.subarray(off, off + 4096).equals(Buffer.alloc(4096)), `extent at ${off} is not a hole`);
    }
    const clear = await vol.readFile('sparse');
    assert.ok(clear.subarray(0, 3 * 1024 * 1024).equals(Buffer.alloc(3 * 1024 * 1024)));
    assert.equal(clear.subarray(3 * 1024 * 1024).toString(), '0123456789');
  } finally {
    dir.cleanup();
  }
});

test('xattr metadata: header in user.ecryptfs, lower holds only extents', async () => {
  const dir = tempDir();
  try {
    const vol = await Volume.open(dir.path, ring, { sigs: [fileKey.sig], fnekSig: null, xattrMetadata: true });
    await vol.writeFile('x', Buffer.from('hello\n'));
    const lower = await fsp.readFile(join(dir.path, 'x'));
    assert.equal(lower.length, 4096);
    assert.ok(!hasMarker(lower));
    assert.deepEqual(await vol.readFile('x'), Buffer.from('hello\n'));
    const st = await vol.stat('x');
    assert.equal(st.size, 6);
  } finally {
    dir.cleanup();
  }
});

test('a large file streams through a bounded buffer', async () => {
  const dir = tempDir();
  try {
    const vol = await Volume.open(dir.path, ring, { sigs: [fileKey.sig], fnekSig: null });
    const size = 24 * 1024 * 1024;
    async function* gen() {
      for (let i = 0; i < size / (1 << 20); i++) yield Buffer.alloc(1 << 20, i);
    }
    await vol.writeFile('big', gen());
    let n = 0;
    let maxChunk = 0;
    for await (const c of vol.createReadStream('big')) {
      const b = c as Buffer;
      assert.equal(b[0], Math.floor(n / (1 << 20)));
      n += b.length;
      maxChunk = Math.max(maxChunk, b.length);
    }
    assert.equal(n, size);
    assert.ok(maxChunk <= 1 << 20);
  } finally {
    dir.cleanup();
  }
});

test('the KeyRing keeps one wrapping cipher per key, cipher and size, and forgets them with its keys', () => {
  const r = new KeyRing();
  const [k] = r.addPassphraseSync('wrap-cipher-pass');
  const a = r.wrapCipher(k.sig, 'aes', 16);
  assert.ok(a);
  assert.equal(r.wrapCipher(k.sig, 'aes', 16), a, 'kept, not made again');
  assert.notEqual(r.wrapCipher(k.sig, 'aes', 32), a, 'another key size is another cipher');
  assert.equal(r.wrapCipher('0000000000000000', 'aes', 16), undefined, 'no key, no cipher');
  r.destroy();
  assert.equal(r.wrapCipher(k.sig, 'aes', 16), undefined);
});

test('every new file gets its own key and header marker (600 creates, past several refills of the random pool)', async () => {
  const dir = tempDir();
  try {
    const vol = await Volume.open(dir.path, ring, { sigs: [fileKey.sig], fnekSig: fnekKey.sig });
    const feks = new Set<string>();
    const markers = new Set<string>();
    for (let i = 0; i < 600; i++) {
      await vol.writeFile(`f${i}`, Buffer.from('x'));
      const head = (await fsp.readFile(join(dir.path, vol.lowerPath(`f${i}`)))).subarray(0, 4096);
      const { fek } = unwrapFek(parseHeader(head).keys[0], fileKey.key);
      assert.notDeepEqual(fek, Buffer.alloc(16), 'not a wiped (zero) key');
      feks.add(fek.toString('hex'));
      markers.add(head.subarray(8, 12).toString('hex'));
    }
    assert.equal(feks.size, 600);
    assert.ok(markers.size > 590, `markers: ${markers.size} distinct`);
  } finally {
    dir.cleanup();
  }
});
