/** ecryptfs-rewrite-file through a real mount: plain files written under passthrough get encrypted. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { hasMarker } from '../../src/format/header.js';
import { mountSkipReason, mountVolume } from '../mount/harness.js';
import { tool } from '../cli/run.js';

const skip = mountSkipReason();

/** `fn` with this process's stdout silenced (rewriteFiles prints a line per file). */
async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const write = process.stdout.write;
  process.stdout.write = () => true;
  try {
    return await fn();
  } finally {
    process.stdout.write = write;
  }
}

test('ecryptfs-rewrite-file encrypts passthrough files in place and keeps their contents and modes', { skip }, async () => {
  const m = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=y,ecryptfs_enable_filename_crypto=n');
  try {
    await fsp.writeFile(join(m.lower, 'plain.txt'), 'written in clear below\n', { mode: 0o640 });
    await fsp.mkdir(join(m.upper, 'dir'));
    assert.equal(await fsp.readFile(join(m.upper, 'plain.txt'), 'utf8'), 'written in clear below\n');
    const r = await tool('ecryptfs-rewrite-file', [join(m.upper, 'plain.txt'), join(m.upper, 'dir'), join(m.upper, 'missing')]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /INFO: Rewriting \[1\/3\] \[.*plain\.txt\] \.\.\. \[OK\]/);
    assert.match(r.stdout, /\[3\/3\] .* \.\.\. \[FAILED\]\n2\/3 rewrites succeeded\n$/);
    assert.match(r.stderr, /ERROR: File does not exist/);
    const lower = await fsp.readFile(join(m.lower, 'plain.txt'));
    assert.ok(hasMarker(lower), 'the lower file is an eCryptfs file now');
    assert.equal((await fsp.stat(join(m.lower, 'plain.txt'))).mode & 0o777, 0o640);
    assert.equal(await fsp.readFile(join(m.upper, 'plain.txt'), 'utf8'), 'written in clear below\n');
    assert.deepEqual((await fsp.readdir(m.upper)).sort(), ['dir', 'plain.txt']);
  } finally {
    await m.cleanup();
  }
});

test('ecryptfs-rewrite-file keeps a file\'s user.* extended attributes', async () => {
  const { getXattrIfAny, setXattr } = await import('../../src/lower/xattr.js');
  const { rewriteFiles } = await import('../../src/cli/rewrite-file.js');
  const dir = await fsp.mkdtemp('/var/tmp/etrewrite-');
  try {
    const f = join(dir, 'f');
    await fsp.writeFile(f, 'data\n');
    await setXattr(f, 'user.kept', Buffer.from('value'));
    assert.equal(await quietly(() => rewriteFiles([f])), 0);
    assert.equal((await getXattrIfAny(f, 'user.kept'))?.toString(), 'value');
    assert.equal(await fsp.readFile(f, 'utf8'), 'data\n');
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});

test('ecryptfs-rewrite-file as root keeps a symbolic link\'s target, owner and group', { skip: process.getuid?.() === 0 ? false : 'needs root' }, async () => {
  const { rewriteFiles } = await import('../../src/cli/rewrite-file.js');
  const dir = await fsp.mkdtemp('/var/tmp/etrewrite-');
  try {
    const l = join(dir, 'link');
    await fsp.symlink('some/target', l);
    await fsp.lchown(l, 54321, 54322);
    assert.equal(await quietly(() => rewriteFiles([l])), 0);
    const st = await fsp.lstat(l);
    assert.ok(st.isSymbolicLink());
    assert.deepEqual([st.uid, st.gid], [54321, 54322]);
    assert.equal(await fsp.readlink(l), 'some/target');
    assert.deepEqual(await fsp.readdir(dir), ['link']);
  } finally {
    await fsp.rm(dir, { recursive: true, force: true });
  }
});
