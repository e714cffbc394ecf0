/** The path-based lower interface never acts through a symlink in place of the entry it names. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, closeSync, fstatSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { openDirPath } from '../../src/lower/at.js';
import { join } from 'node:path';
import { NodeLowerFs, resolveBytes } from '../../src/lower/lowerfs.js';
import { tempDir } from '../helpers/fixtures.js';

test('chmod of an entry that is a symlink is refused, and the file it points to keeps its mode', async () => {
  const t = tempDir('ecryptfs-lowerfs-');
  try {
    const outside = join(t.path, 'outside');
    writeFileSync(outside, 'x');
    chmodSync(outside, 0o600);
    symlinkSync(outside, join(t.path, 'swapped'));
    writeFileSync(join(t.path, 'plain'), 'y');
    const lower = new NodeLowerFs(t.path);
    await assert.rejects(lower.chmod('swapped', 0o4777), { code: 'ELOOP' });
    assert.equal(statSync(outside).mode & 0o7777, 0o600);
    await lower.chmod('plain', 0o640);
    assert.equal(statSync(join(t.path, 'plain')).mode & 0o7777, 0o640);
  } finally {
    t.cleanup();
  }
});

test('openDirPath walks from / without following a link anywhere on the way', () => {
  const t = tempDir('ecryptfs-walk-');
  try {
    mkdirSync(join(t.path, 'real', 'lower'), { recursive: true });
    symlinkSync(join(t.path, 'real'), join(t.path, 'link'));
    const fd = openDirPath(join(t.path, 'real', 'lower'));
    assert.equal(fstatSync(fd).ino, statSync(join(t.path, 'real', 'lower')).ino);
    closeSync(fd);
    // O_DIRECTORY|O_NOFOLLOW on a symlink: ENOTDIR (ELOOP without O_DIRECTORY).
    const refused = (e: unknown) => ['ELOOP', 'ENOTDIR'].includes((e as NodeJS.ErrnoException).code ?? '');
    assert.throws(() => openDirPath(join(t.path, 'link', 'lower')), refused);
    assert.throws(() => openDirPath(join(t.path, 'link')), refused);
  } finally {
    t.cleanup();
  }
});

test('resolveBytes: a relative byte path under a working directory that is not ASCII keeps both as their bytes', () => {
  const t = tempDir('ecryptfs-lowerfs-');
  const cwd = process.cwd();
  try {
    const dir = join(t.path, 'r\u00e9pertoire');
    mkdirSync(dir);
    const name = Buffer.from([0x63, 0x61, 0x66, 0xe9]); // caf\xe9, not UTF-8
    writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), name]), 'x');
    process.chdir(dir);
    const abs = resolveBytes(name);
    assert.deepEqual(abs, Buffer.concat([Buffer.from(`${dir}/`), name]));
    assert.equal(statSync(abs).size, 1);
    assert.equal(resolveBytes('plain'), join(dir, 'plain'));
  } finally {
    process.chdir(cwd);
    t.cleanup();
  }
});
