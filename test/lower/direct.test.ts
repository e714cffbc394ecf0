/**
 * FdLowerFile's large reads with O_DIRECT (a second descriptor on the same file, opened through
 * the first one's /proc link): only while the mount asks for them, only for whole pages of at
 * least 128 KiB none of which is in the page cache, the same bytes as the buffered read, a buffer
 * that is not page-aligned read the buffered way, and the second descriptor closed with the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, constants as C, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DIRECT_FDS_MAX, FdLowerFile } from '../../src/lower/at.js';
import { cachedPages } from '../../src/lower/sys.js';
import { pageAlignedBuffer } from '../../src/sys/libc.js';
import { seededBytes } from '../helpers/prng.js';

const MiB = 1 << 20;

/** Descriptors of this process open on `path`, with their open flags (from /proc/self/fdinfo). */
function descriptorsOn(path: string): { fd: number; flags: number }[] {
  const want = statSync(path);
  const out: { fd: number; flags: number }[] = [];
  for (const name of readdirSync('/proc/self/fd')) {
    let st;
    try {
      if (!readlinkSync(`/proc/self/fd/${name}`).startsWith('/')) continue;
      st = statSync(`/proc/self/fd/${name}`);
    } catch {
      continue;
    }
    if (st.dev !== want.dev || st.ino !== want.ino) continue;
    const m = /^flags:\s+([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${name}`, 'utf8'));
    out.push({ fd: Number(name), flags: parseInt(m![1], 8) });
  }
  return out;
}

/** `data` written to a new file with O_DIRECT, so none of it is in the page cache; false where refused. */
function writeUncached(path: string, data: Buffer): boolean {
  const b = pageAlignedBuffer(data.length);
  data.copy(b);
  let fd: number;
  try {
    fd = openSync(path, C.O_WRONLY | C.O_CREAT | C.O_EXCL | C.O_DIRECT, 0o600);
  } catch {
    writeFileSync(path, data);
    return false;
  }
  try {
    writeSync(fd, b, 0, b.length, 0);
  } finally {
    closeSync(fd);
  }
  return true;
}

test('large page-aligned reads of uncached pages use O_DIRECT while asked to, with the same bytes; the second descriptor goes with the file', async (t) => {
  // /var/tmp: on disk where /tmp may be a tmpfs (O_DIRECT there only since Linux 6.6).
  const root = mkdtempSync(join(existsSync('/var/tmp') ? '/var/tmp' : tmpdir(), 'ecryptfs-direct-'));
  try {
    const data = seededBytes(7, 3 * MiB);
    const aligned = pageAlignedBuffer(MiB);
    // Not asked to: a buffered read, no second descriptor.
    const other = join(root, 'other');
    writeUncached(other, data);
    const g = new FdLowerFile(openSync(other, 'r'), 64 * 1024, other);
    assert.equal(await g.read(aligned, 0, MiB, 2 * MiB), MiB);
    assert.deepEqual(aligned, data.subarray(2 * MiB));
    assert.equal(descriptorsOn(other).length, 1);
    await g.close();

    const path = join(root, 'lower');
    const direct = writeUncached(path, data);
    const f = new FdLowerFile(openSync(path, 'r'), 64 * 1024, path);
    f.directReads = true;
    if (direct) assert.equal(cachedPages(f.fd, 0, 3 * MiB) ?? 0, 0, 'written around the page cache');
    aligned.fill(0);
    assert.equal(await f.read(aligned, 0, MiB, 2 * MiB), MiB);
    assert.deepEqual(aligned, data.subarray(2 * MiB));
    const fds = descriptorsOn(path);
    if (!direct || cachedPages(f.fd, 0, 4096) === undefined) {
      // No O_DIRECT on this filesystem (tmpfs before Linux 6.6) or no cachestat (before 6.5): buffered, and right.
      t.diagnostic(`no O_DIRECT reads in ${root}: the buffered reads were checked`);
      assert.equal(fds.length, 1);
      await f.close();
      return;
    }
    assert.equal(fds.length, 2, 'one O_DIRECT descriptor beside the first');
    assert.ok(fds.some((d) => d.flags & C.O_DIRECT), 'the second descriptor is O_DIRECT');
    assert.equal(cachedPages(f.fd, 2 * MiB, MiB), 0, 'read around the page cache');
    // A buffer that is not page-aligned: O_DIRECT refuses it (EINVAL), the buffered read serves.
    const unaligned = Buffer.allocUnsafeSlow(MiB + 4096).subarray(1, 1 + MiB);
    assert.equal(await f.read(unaligned, 0, MiB, MiB), MiB);
    assert.deepEqual(unaligned, data.subarray(MiB, 2 * MiB));
    assert.ok(cachedPages(f.fd, MiB, MiB)! > 0, 'that one went through the page cache');
    // Pages in the page cache are copied from it: no O_DIRECT descriptor for them.
    const h = new FdLowerFile(openSync(path, 'r'), 64 * 1024, path);
    h.directReads = true;
    assert.equal(await h.read(aligned, 0, MiB, MiB), MiB);
    assert.deepEqual(aligned, data.subarray(MiB, 2 * MiB));
    assert.equal(descriptorsOn(path).length, 3, 'f\'s two and h\'s one');
    await h.close();
    // Small or not whole pages: buffered.
    assert.equal(await f.read(aligned, 0, 64 * 1024, 4096), 64 * 1024);
    assert.equal(await f.read(aligned, 0, 200000, 4096), 200000);
    assert.deepEqual(aligned.subarray(0, 200000), data.subarray(4096, 204096));
    // Short at the end of the file, as a buffered read.
    assert.equal(await f.read(aligned, 0, MiB, 3 * MiB - 256 * 1024), 256 * 1024);
    assert.deepEqual(aligned.subarray(0, 256 * 1024), data.subarray(3 * MiB - 256 * 1024));
    await f.close();
    assert.deepEqual(descriptorsOn(path), [], 'both descriptors closed');
    await assert.rejects(f.read(aligned, 0, MiB, 0), { code: 'EBADF' });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('at most DIRECT_FDS_MAX O_DIRECT descriptors at once in the process; past them reads go through the page cache', async () => {
  const root = mkdtempSync(join(existsSync('/var/tmp') ? '/var/tmp' : tmpdir(), 'ecryptfs-direct-'));
  const files: FdLowerFile[] = [];
  try {
    const data = seededBytes(9, 128 * 1024);
    const buf = pageAlignedBuffer(128 * 1024);
    let direct = 0;
    for (let i = 0; i < DIRECT_FDS_MAX + 3; i++) {
      const path = join(root, `f${i}`);
      if (!writeUncached(path, data)) return; // no O_DIRECT here: nothing to bound
      const f = new FdLowerFile(openSync(path, 'r'), 64 * 1024, path);
      files.push(f);
      f.directReads = true;
      assert.equal(await f.read(buf, 0, buf.length, 0), buf.length);
      assert.deepEqual(buf, data);
      if (descriptorsOn(path).some((d) => d.flags & C.O_DIRECT)) direct++;
    }
    if (cachedPages(files[0].fd, 0, 4096) === undefined) return; // no cachestat (before Linux 6.5): no O_DIRECT reads
    assert.equal(direct, DIRECT_FDS_MAX);
    // One closed: the next file may have one again.
    await files[0].close();
    const path = join(root, 'again');
    writeUncached(path, data);
    const g = new FdLowerFile(openSync(path, 'r'), 64 * 1024, path);
    files.push(g);
    g.directReads = true;
    assert.equal(await g.read(buf, 0, buf.length, 0), buf.length);
    assert.ok(descriptorsOn(path).some((d) => d.flags & C.O_DIRECT));
  } finally {
    for (const f of files) await f.close();
    rmSync(root, { recursive: true, force: true });
  }
});
