/**
 * Randomized operations through a real mount against an in-memory model (fsx-style): writes at
 * random offsets and lengths, truncates, renames, reopens, fsyncs; every read is checked. Then
 * the lower directory is decrypted offline and compared with the model again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, closeSync, writeSync, readSync, ftruncateSync, fsyncSync, renameSync, fstatSync, promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { mountSkipReason, mountVolume } from './harness.js';
import { ecryptfs } from '../cli/run.js';
import { prng } from '../helpers/prng.js';

const skip = mountSkipReason();
const OPS = Number(process.env.ECRYPTFS_RANDOM_OPS ?? 20000);

test(`${OPS} random operations through the mount match a model, online and offline`, { skip }, async () => {
  const seed = Number(process.env.ECRYPTFS_SEED ?? Date.now() % 1e9);
  const rnd = prng(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const m = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y');
  const models = new Map<string, Buffer>();
  const names = ['alpha', 'beta', 'gamma dir/x', 'delta'];
  await fsp.mkdir(join(m.upper, 'gamma dir'));
  const fds = new Map<string, number>();
  const open = (name: string) => {
    let fd = fds.get(name);
    if (fd === undefined) {
      fd = openSync(join(m.upper, name), models.has(name) ? 'r+' : 'w+');
      fds.set(name, fd);
      if (!models.has(name)) models.set(name, Buffer.alloc(0));
    }
    return fd;
  };
  const check = (name: string) => {
    const fd = open(name);
    const want = models.get(name)!;
    assert.equal(fstatSync(fd).size, want.length, `size of ${name} (seed ${seed})`);
    const got = Buffer.alloc(want.length);
    let n = 0;
    while (n < want.length) {
      const r = readSync(fd, got, n, want.length - n, n);
      if (r === 0) break;
      n += r;
    }
    assert.ok(got.equals(want), `contents of ${name} (seed ${seed})`);
  };
  try {
    for (let i = 0; i < OPS; i++) {
      const name = names[int(names.length)];
      const kind = int(100);
      if (kind < 50) {
        const fd = open(name);
        const model = models.get(name)!;
        const pos = int(3) === 0 ? model.length : int(Math.max(1, model.length + 70000));
        const len = int(3) === 0 ? int(20) : int(70000);
        const data = Buffer.alloc(len);
        // Every byte random (from the seed), so a misplaced or stale extent cannot go unseen.
        let j = 0;
        for (; j + 4 <= len; j += 4) data.writeUInt32LE(Math.floor(rnd() * 4294967296), j);
        for (; j < len; j++) data[j] = int(256);
        writeSync(fd, data, 0, len, pos);
        if (len === 0) continue; // pwrite of nothing does not extend the file
        const next = Buffer.alloc(Math.max(model.length, pos + len));
        model.copy(next);
        data.copy(next, pos);
        models.set(name, next);
      } else if (kind < 65) {
        const fd = open(name);
        const model = models.get(name)!;
        const size = int(model.length + 50000);
        ftruncateSync(fd, size);
        models.set(name, size <= model.length ? Buffer.from(model.subarray(0, size)) : Buffer.concat([model, Buffer.alloc(size - model.length)]));
      } else if (kind < 75) {
        const fd = fds.get(name);
        if (fd !== undefined) {
          closeSync(fd);
          fds.delete(name);
        }
      } else if (kind < 82) {
        if (!models.has(name)) continue;
        const other = names[int(names.length)];
        if (other === name) continue;
        for (const n of [name, other]) {
          const fd = fds.get(n);
          if (fd !== undefined) closeSync(fd);
          fds.delete(n);
        }
        renameSync(join(m.upper, name), join(m.upper, other));
        models.set(other, models.get(name)!);
        models.delete(name);
      } else if (kind < 87) {
        if (models.has(name)) fsyncSync(open(name));
      } else if (models.has(name)) check(name);
    }
    for (const name of models.keys()) check(name);
  } catch (e) {
    for (const fd of fds.values()) closeSync(fd);
    await m.cleanup();
    throw e;
  }
  for (const fd of fds.values()) closeSync(fd);
  await m.umount();
  const pw = join(m.root, 'offline-pw');
  await fsp.writeFile(pw, 'mount-test-passphrase\n');
  const out = join(m.root, 'offline');
  const r = await ecryptfs(['decrypt', m.lower, '-o', out, '--passphrase-file', pw]);
  assert.equal(r.code, 0, r.stderr);
  try {
    for (const [name, want] of models) assert.ok((await fsp.readFile(join(out, name))).equals(want), `offline ${name} (seed ${seed})`);
  } finally {
    await m.cleanup();
  }
});
