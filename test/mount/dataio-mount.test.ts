/**
 * READ/WRITE through a real mount while several processes write and read at once: the daemon
 * switches between its synchronous path (one caller) and the asynchronous one (callers at once),
 * also on one file two processes write; every byte must come back, online and after a remount.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { KeyRing } from '../../src/volume/keyring.js';
import { Volume } from '../../src/volume/volume.js';
import { join } from 'node:path';
import { mountSkipReason, mountVolume, withRemount } from './harness.js';

const skip = mountSkipReason();

/** Byte i of a writer's pattern. */
const pattern = (seed: number, from: number, to: number) => {
  const b = Buffer.alloc(to - from);
  for (let i = from; i < to; i++) b[i - from] = (i * 31 + seed * 7 + (i >> 12)) & 255;
  return b;
};

/** A child that writes its pattern over [from, to) of `path` in chunks of varied sizes, then reads it back. */
const WRITER = `
const fs = require('node:fs');
const [path, seed, from, to] = process.argv.slice(1).map((v, i) => (i === 0 ? v : Number(v)));
const pat = (a, b) => { const x = Buffer.alloc(b - a); for (let i = a; i < b; i++) x[i - a] = (i * 31 + seed * 7 + (i >> 12)) & 255; return x; };
const fd = fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
const sizes = [1 << 20, 4096, 5000, 65536, 1, 131072 + 3];
let x = seed;
for (let pos = from; pos < to; ) {
  x = (Math.imul(x, 1103515245) + 12345) >>> 0;
  const n = Math.min(sizes[(x >>> 16) % sizes.length], to - pos);
  fs.writeSync(fd, pat(pos, pos + n), 0, n, pos);
  pos += n;
}
const back = Buffer.alloc(to - from);
fs.readSync(fd, back, 0, back.length, from);
fs.closeSync(fd);
if (!back.equals(pat(from, to))) { console.error('read back differs'); process.exit(1); }
`;

function run(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['-e', WRITER, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer ${args.join(' ')}: exit ${code} ${err}`))));
  });
}

test('several processes writing and reading at once, also one file from two processes: every byte comes back', { skip }, async () => {
  const m = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y');
  try {
    const MB = 1 << 20;
    const own = [0, 1, 2, 3].map((i) => ({ path: join(m.upper, `own${i}`), seed: i + 1, size: 3 * MB + 777 * i }));
    const shared = join(m.upper, 'shared');
    writeFileSync(shared, '');
    // One file alone first (the synchronous path), then all at once.
    await run([own[0].path, String(own[0].seed), '0', String(own[0].size)]);
    await Promise.all([
      ...own.slice(1).map((f) => run([f.path, String(f.seed), '0', String(f.size)])),
      // Two writers of one file: the second starts past the end (a gap the first fills meanwhile).
      run([shared, '9', '0', String(2 * MB + 100)]),
      run([shared, '9', String(2 * MB + 100), String(4 * MB)]),
    ]);
    const check = () => {
      for (const f of own) assert.ok(readFileSync(f.path).equals(pattern(f.seed, 0, f.size)), `contents of ${f.path}`);
      assert.ok(readFileSync(shared).equals(pattern(9, 0, 4 * MB)), 'contents of the shared file');
    };
    check();
    // And from the lower files alone, after a remount.
    await withRemount(m, 'ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y', async (again) => {
      for (const f of own) assert.ok(readFileSync(join(again.upper, `own${own.indexOf(f)}`)).equals(pattern(f.seed, 0, f.size)));
      assert.ok(readFileSync(join(again.upper, 'shared')).equals(pattern(9, 0, 4 * MB)));
    });
  } finally {
    await m.cleanup();
  }
});

test('writes of every size and alignment across extents, aligned 1 MiB ones too, read back through the mount and the library', { skip }, async () => {
  const m = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n');
  try {
    const MB = 1 << 20;
    const path = join(m.upper, 'big');
    let model = pattern(3, 0, 3 * MB);
    writeFileSync(path, model);
    const fd = openSync(path, 'r+');
    try {
      let x = 11;
      for (const pos of [0, 1, 4095, 4096, 4097, 12345, MB - 1, 2 * MB + 100, 3 * MB - 10]) {
        for (const len of [1, 4095, 4096, 4097, 3 * 4096, 512 * 1024 + 1, MB - 4097, MB]) {
          x = (Math.imul(x, 1103515245) + 12345) >>> 0;
          const data = pattern(x & 0xffff, pos, pos + len);
          assert.equal(writeSync(fd, data, 0, len, pos), len);
          if (pos + len > model.length) model = Buffer.concat([model, Buffer.alloc(pos + len - model.length)]);
          data.copy(model, pos);
        }
      }
    } finally {
      closeSync(fd);
    }
    assert.ok(readFileSync(path).equals(model), 'through the mount');
    await m.umount();
    const ring = new KeyRing();
    const [k] = await ring.addPassphrase('mount-test-passphrase');
    const vol = await Volume.open(m.lower, ring, { sigs: [k.sig], fnekSig: null });
    try {
      assert.ok((await vol.readFile('big')).equals(model), 'through the library');
    } finally {
      vol.close();
    }
  } finally {
    await m.cleanup();
  }
});
