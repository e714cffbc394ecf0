/**
 * FdLowerFile's large reads with O_DIRECT (a second descriptor on the same file, opened through
 * the first one's /proc link): only while the mount asks for them, only for whole pages of at
 * least 128 KiB, the same bytes as the buffered read, a buffer that is not page-aligned read the
 * buffered way, and the second descriptor closed with the file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FdLowerFile } from '../../src/lower/at.js';
import { pageAlignedBuffer } from '../../src/sys/libc.js';
import { seededBytes } from '../helpers/prng.js';

const O_DIRECT = 0o40000;

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

test('large page-aligned reads use O_DIRECT while asked to, with the same bytes; the second descriptor goes with the file', async (t) => {
  // /var/tmp: on disk where /tmp may be a tmpfs (O_DIRECT there only since Linux 6.6).
  const path0 = mkdtempSync(join(existsSync('/var/tmp') ? '/var/tmp' : tmpdir(), 'ecryptfs-direct-'));
  const dir = { path: path0, cleanup: () => rmSync(path0, { recursive: true, force: true }) };
  try {
    const path = join(dir.path, 'lower');
    const data = seededBytes(7, 3 << 20);
    writeFileSync(path, data);
    const f = new FdLowerFile(openSync(path, 'r'), 64 * 1024, path);
    const aligned = pageAlignedBuffer(1 << 20);
    // Not asked to: buffered, no second descriptor.
    assert.equal(await f.read(aligned, 0, 1 << 20, 8192), 1 << 20);
    assert.deepEqual(aligned, data.subarray(8192, 8192 + (1 << 20)));
    assert.equal(descriptorsOn(path).length, 1);
    f.directReads = true;
    // Small or not whole pages: buffered still.
    assert.equal(await f.read(aligned, 0, 64 * 1024, 4096), 64 * 1024);
    assert.equal(await f.read(aligned, 0, 200000, 4096), 200000);
    assert.deepEqual(aligned.subarray(0, 200000), data.subarray(4096, 204096));
    assert.equal(descriptorsOn(path).length, 1, 'no O_DIRECT descriptor for reads that cannot use it');
    aligned.fill(0);
    assert.equal(await f.read(aligned, 0, 1 << 20, 4096), 1 << 20);
    assert.deepEqual(aligned, data.subarray(4096, 4096 + (1 << 20)));
    const fds = descriptorsOn(path);
    if (!fds.some((d) => d.flags & O_DIRECT)) {
      // The filesystem refused O_DIRECT (tmpfs before Linux 6.6): the reads above were buffered and right.
      t.diagnostic(`no O_DIRECT on the filesystem of ${dir.path}: the buffered fallback was checked`);
      assert.equal(fds.length, 1);
      await f.close();
      return;
    }
    assert.equal(fds.length, 2, 'one O_DIRECT descriptor beside the first');
    // A buffer that is not page-aligned: O_DIRECT refuses it (EINVAL), the buffered read serves.
    const unaligned = Buffer.allocUnsafeSlow((1 << 20) + 4096).subarray(1, 1 + (1 << 20));
    assert.equal(await f.read(unaligned, 0, 1 << 20, 2 << 20), 1 << 20);
    assert.deepEqual(unaligned, data.subarray(2 << 20, 3 << 20));
    // Short at the end of the file, as a buffered read.
    assert.equal(await f.read(aligned, 0, 1 << 20, (3 << 20) - (256 << 10)), 256 << 10);
    assert.deepEqual(aligned.subarray(0, 256 << 10), data.subarray((3 << 20) - (256 << 10)));
    await f.close();
    assert.deepEqual(descriptorsOn(path), [], 'both descriptors closed');
    await assert.rejects(f.read(aligned, 0, 1 << 20, 0), { code: 'EBADF' });
  } finally {
    dir.cleanup();
  }
});
