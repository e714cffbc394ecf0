/** The path-based lower interface never acts through a symlink in place of the entry it names. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, closeSync, fstatSync, lchownSync, mkdirSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { openDirPath, openDirPathTrusted } from '../../src/lower/at.js';
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

test('openDirPathTrusted follows root\'s links in directories only root may change, and no other link', { skip: process.getuid?.() !== 0 ? 'needs root (links of another owner)' : false }, () => {
  const t = tempDir('ecryptfs-walk-');
  const refused = (e: unknown) => (e as NodeJS.ErrnoException).code === 'ELOOP';
  const ino = (p: string) => statSync(p).ino;
  const opened = (p: string) => {
    const fd = openDirPathTrusted(p);
    try {
      return fstatSync(fd).ino;
    } finally {
      closeSync(fd);
    }
  };
  try {
    const lower = join(t.path, 'real', 'lower');
    mkdirSync(lower, { recursive: true });
    // Root's, in root's 0700 directory: absolute, relative, through '..', a link to a link.
    symlinkSync(join(t.path, 'real'), join(t.path, 'abs'));
    symlinkSync('real', join(t.path, 'rel'));
    symlinkSync('../real', join(t.path, 'real', 'up'));
    symlinkSync('abs', join(t.path, 'chain'));
    for (const p of ['abs/lower', 'rel/lower', 'real/up/lower', 'chain/lower', 'rel/lower/../lower']) assert.equal(opened(join(t.path, p)), ino(lower), p);
    // A link a user owns (it could point anywhere next time), even in root's directory.
    symlinkSync('real', join(t.path, 'users'));
    lchownSync(join(t.path, 'users'), 65534, 65534);
    assert.throws(() => openDirPathTrusted(join(t.path, 'users', 'lower')), refused);
    // Root's link in a directory others may write to (they could replace it); sticky is safe.
    const open = join(t.path, 'open');
    mkdirSync(open);
    symlinkSync(join(t.path, 'real'), join(open, 'l'));
    chmodSync(open, 0o777);
    assert.throws(() => openDirPathTrusted(join(open, 'l', 'lower')), refused);
    chmodSync(open, 0o1777);
    assert.equal(opened(join(open, 'l', 'lower')), ino(lower));
    // A loop ends.
    symlinkSync('loop', join(t.path, 'loop'));
    assert.throws(() => openDirPathTrusted(join(t.path, 'loop')), refused);
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

test('a NodeLowerFs on a held root keeps working on that directory when its path is swapped', async () => {
  const tmp = tempDir('held-root');
  const base = tmp.path;
  const dir = join(base, 'lower');
  mkdirSync(dir);
  writeFileSync(join(dir, 'mine'), 'kept');
  const fd = openDirPath(dir);
  try {
    const lower = new NodeLowerFs(dir, { rootFd: fd });
    // What a user owning `base` could do between the check and the use of a path.
    renameSync(dir, join(base, 'moved'));
    mkdirSync(dir);
    writeFileSync(join(dir, 'planted'), 'not the lower root');
    assert.ok((await lower.stat('')).isDirectory());
    assert.deepEqual(await lower.readdir(''), ['mine']);
    assert.deepEqual(await lower.readdirBytes(''), [Buffer.from('mine')]);
    assert.equal((await lower.lstat('mine')).size, 4);
    await lower.mkdir(Buffer.from('sub\xff', 'latin1'), 0o700);
    assert.ok(statSync(Buffer.from(join(base, 'moved', 'sub\xff'), 'latin1')).isDirectory());
    assert.equal(lower.abs('mine'), join(dir, 'mine'), 'messages still name the path');
  } finally {
    closeSync(fd);
    tmp.cleanup();
  }
});
