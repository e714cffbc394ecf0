/**
 * READs of every size and alignment through a real mount: O_DIRECT, so each read(2) reaches the
 * daemon as one READ of exactly that range (the synchronous path up to 64 KiB, answered from its
 * reused buffer, and the asynchronous one above), across extent boundaries and the end of the
 * file; every answer must match what was written and what the library reads from the lower file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KeyRing } from '../../src/volume/keyring.js';
import { Volume } from '../../src/volume/volume.js';
import { mountSkipReason, mountVolume } from './harness.js';

const skip = mountSkipReason();

/** A child that reads `path` with O_DIRECT at every (offset, size) pair and prints the reads as hex lines. */
const READER = `
const fs = require('node:fs');
const [path, offsets, sizes] = [process.argv[1], JSON.parse(process.argv[2]), JSON.parse(process.argv[3])];
const fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_DIRECT);
const out = [];
for (const pos of offsets) for (const len of sizes) {
  const b = Buffer.alloc(len);
  const n = fs.readSync(fd, b, 0, len, pos);
  out.push(pos + ' ' + len + ' ' + b.subarray(0, n).toString('hex'));
}
fs.closeSync(fd);
process.stdout.write(out.join('\\n'));
`;

test('O_DIRECT reads of every size and alignment match the written bytes and the library', { skip }, async () => {
  const m = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n', { passphrase: 'read-sizes-pass' });
  try {
    // 40 extents and a partial one: room for the largest reads to cross many extents and the end.
    const data = randomBytes(40 * 4096 + 1234);
    writeFileSync(join(m.upper, 'f'), data);
    const e = 4096;
    const offsets = [0, 1, 511, e - 1, e, e + 1, 2 * e - 3, 3 * e + 100, 20 * e + 7, data.length - e - 1, data.length - 5, data.length - 1, data.length, data.length + 10];
    const sizes = [1, 2, 16, 511, e - 1, e, e + 1, 2 * e, 2 * e + 1, 3 * e - 1, 65535, 65536, 65537, 65536 + 2 * e, 100000, 131072];
    const r = spawnSync(process.execPath, ['-e', READER, join(m.upper, 'f'), JSON.stringify(offsets), JSON.stringify(sizes)], { encoding: 'utf8', maxBuffer: 1 << 30 });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.equal(lines.length, offsets.length * sizes.length);
    for (const line of lines) {
      const [pos, len, hex] = line.split(' ');
      const want = data.subarray(Math.min(Number(pos), data.length), Math.min(Number(pos) + Number(len), data.length));
      assert.ok(Buffer.from(hex ?? '', 'hex').equals(want), `read of ${len} bytes at ${pos}`);
    }
    await m.umount();
    // The library reads the same bytes from the lower file the daemon wrote.
    const ring = new KeyRing();
    const [k] = await ring.addPassphrase('read-sizes-pass');
    const vol = await Volume.open(m.lower, ring, { sigs: [k.sig], fnekSig: null, readOnly: true });
    assert.ok((await vol.readFile('f')).equals(data));
  } finally {
    await m.cleanup();
  }
});

test('readahead READs of several readers at once, each answered from a reused buffer, keep every byte', { skip }, async () => {
  const opts = 'ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n';
  const m = await mountVolume(opts, { passphrase: 'read-sizes-pass' });
  try {
    const files = [0, 1, 2, 3].map((i) => ({ name: `big${i}`, data: randomBytes(4 * 1024 * 1024 + 999 * i) }));
    for (const f of files) writeFileSync(join(m.upper, f.name), f.data);
    await m.umount();
    // A fresh mount has nothing cached: every read(2) below becomes readahead READs of up to 1 MiB.
    const again = await mountVolume(opts, { lower: m.lower, passphrase: 'read-sizes-pass' });
    try {
      const reader = `process.stdout.write(require('node:crypto').createHash('sha256').update(require('node:fs').readFileSync(process.argv[1])).digest('hex'))`;
      const sums = await Promise.all(files.map((f) => new Promise<string>((resolve, reject) => {
        const p = spawn(process.execPath, ['-e', reader, join(again.upper, f.name)], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        p.stdout.on('data', (d: Buffer) => (out += d.toString()));
        p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`reader of ${f.name}: exit ${code}`))));
      })));
      files.forEach((f, i) => assert.equal(sums[i], createHash('sha256').update(f.data).digest('hex'), f.name));
    } finally {
      await again.cleanup();
    }
  } finally {
    await m.cleanup();
  }
});
