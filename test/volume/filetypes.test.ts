/**
 * Every file type and the xattrs survive encrypt and decrypt (issue #13): FIFOs, sockets and
 * device nodes are stored the kernel's way (no header, name encrypted); user.* xattrs and POSIX
 * ACLs go with the files both ways, never the user.ecryptfs metadata; a destination that refuses
 * xattrs gives a note.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { fsck } from '../../src/volume/fsck.js';
import { KeyRing } from '../../src/volume/keyring.js';
import { mknodAt, S_IFCHR, S_IFIFO, S_IFSOCK } from '../../src/lower/mknod.js';
import { getXattrIfAny, listXattr } from '../../src/lower/xattr.js';
import { decryptTree, encryptTree } from '../../src/volume/tree.js';
import { Volume } from '../../src/volume/volume.js';
import { tempDir } from '../helpers/fixtures.js';

const ring = new KeyRing();
const [fileKey, fnekKey] = ring.addPassphraseSync('filetypes-pass');
const root = process.getuid?.() === 0;
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const aclTools = have('setfacl') && have('getfacl');
const B = (s: string) => Buffer.from(s, 'latin1');

async function tree(dir: string): Promise<string> {
  const src = join(dir, 'src');
  fs.mkdirSync(join(src, 'd'), { recursive: true });
  fs.writeFileSync(join(src, 'f'), 'file');
  await mknodAt(join(src, 'fifo'), S_IFIFO | 0o640, 0);
  await mknodAt(Buffer.concat([Buffer.from(join(src, 'd/')), B('sock\xe9')]), S_IFSOCK | 0o600, 0);
  if (root) await mknodAt(join(src, 'null'), S_IFCHR | 0o666, fs.statSync('/dev/null').rdev);
  return src;
}

test('FIFOs, sockets and device nodes: encrypt stores them as the kernel does, decrypt makes them again, fsck names them', { skip: root ? false : 'device nodes need root (CI runs as root); FIFOs and sockets are tested too' }, async () => {
  const dir = tempDir('ecryptfs-types-');
  try {
    const src = await tree(dir.path);
    const lower = join(dir.path, 'lower');
    fs.mkdirSync(lower);
    const vol = await Volume.open(lower, ring, { sigs: [fileKey.sig], fnekSig: fnekKey.sig });
    const e = await encryptTree(vol, [src]);
    assert.deepEqual(e.problems, []);
    assert.equal(e.specials, 3);
    const fifoLower = join(lower, vol.encodeName('fifo'));
    const fst = fs.lstatSync(fifoLower);
    assert.ok(fst.isFIFO());
    assert.equal(fst.mode & 0o7777, 0o640);
    assert.equal(fst.size, 0, 'no header on a special file');
    const nst = fs.lstatSync(join(lower, vol.encodeName('null')));
    assert.ok(nst.isCharacterDevice());
    assert.equal(nst.rdev, fs.statSync('/dev/null').rdev);
    assert.ok(fs.lstatSync(Buffer.concat([Buffer.from(join(lower, vol.encodeName('d'), '/')), vol.encodeNameBytes(B('sock\xe9'))])).isSocket());
    const report = await fsck(vol);
    const byClear = new Map(report.entries.map((x) => [x.clearPath, x]));
    assert.equal(byClear.get('fifo')?.type, 'fifo');
    assert.equal(byClear.get('fifo')?.verdict, 'ok');
    assert.equal(byClear.get('d/sock\\xe9')?.type, 'socket');
    assert.match(byClear.get('null')!.detail, /char-device 1:3/);
    assert.equal(report.counts.ok, report.entries.length);
    const dest = join(dir.path, 'dest');
    const d = await decryptTree(vol, [''], dest);
    assert.deepEqual(d.problems, []);
    assert.equal(d.specials, 3);
    const df = fs.lstatSync(join(dest, 'fifo'));
    assert.ok(df.isFIFO());
    assert.equal(df.mode & 0o7777, 0o640);
    assert.equal(df.mtimeMs, fst.mtimeMs);
    assert.ok(fs.lstatSync(Buffer.concat([Buffer.from(join(dest, 'd/')), B('sock\xe9')])).isSocket());
    assert.equal(fs.lstatSync(join(dest, 'null')).rdev, fs.statSync('/dev/null').rdev);
  } finally {
    dir.cleanup();
  }
});

test('user.* xattrs and POSIX ACLs survive encrypt and decrypt; user.ecryptfs never leaves the lower file', { skip: aclTools ? false : 'setfacl/getfacl missing (apt-get install acl; CI installs it)' }, async () => {
  const dir = tempDir('ecryptfs-types-');
  try {
    const src = join(dir.path, 'src');
    fs.mkdirSync(join(src, 'd'), { recursive: true });
    fs.writeFileSync(join(src, 'f'), 'file');
    execFileSync('setfattr', ['-n', 'user.color', '-v', 'blue', join(src, 'f')]);
    execFileSync('setfattr', ['-n', 'user.dir', '-v', '0x00ff', join(src, 'd')]);
    execFileSync('setfacl', ['-m', 'u:4321:r', join(src, 'f')]);
    execFileSync('setfacl', ['-d', '-m', 'u:4321:rwx', join(src, 'd')]);
    const acl = (p: string) => execFileSync('getfacl', ['-cp', p], { encoding: 'utf8' });
    const lower = join(dir.path, 'lower');
    fs.mkdirSync(lower);
    const vol = await Volume.open(lower, ring, { sigs: [fileKey.sig], fnekSig: fnekKey.sig, xattrMetadata: true });
    const e = await encryptTree(vol, [src]);
    assert.deepEqual(e.problems, []);
    assert.deepEqual(e.notes, []);
    const lf = join(lower, vol.encodeName('f'));
    assert.deepEqual(await getXattrIfAny(lf, 'user.color'), Buffer.from('blue'));
    assert.ok(await getXattrIfAny(lf, 'user.ecryptfs'), 'xattr metadata on the lower file');
    assert.match(acl(lf), /user:4321:r--/);
    assert.match(acl(join(lower, vol.encodeName('d'))), /default:user:4321:rwx/);
    const dest = join(dir.path, 'dest');
    const d = await decryptTree(vol, [''], dest);
    assert.deepEqual(d.problems, []);
    assert.deepEqual(d.notes, []);
    assert.equal(fs.readFileSync(join(dest, 'f'), 'utf8'), 'file');
    assert.deepEqual(await getXattrIfAny(join(dest, 'f'), 'user.color'), Buffer.from('blue'));
    assert.deepEqual(await getXattrIfAny(join(dest, 'd'), 'user.dir'), Buffer.from([0, 0xff]));
    assert.ok(!(await listXattr(join(dest, 'f'))).includes('user.ecryptfs'));
    assert.match(acl(join(dest, 'f')), /user:4321:r--/);
    assert.match(acl(join(dest, 'd')), /default:user:4321:rwx/);
    assert.equal(fs.statSync(join(dest, 'f')).mode & 0o777, fs.statSync(join(src, 'f')).mode & 0o777);
  } finally {
    dir.cleanup();
  }
});

test('a DEST that refuses xattrs (ramfs) gets the files and one note per reason', { skip: root ? false : 'mounting ramfs needs root (CI runs as root)' }, async () => {
  const dir = tempDir('ecryptfs-types-');
  const dest = join(dir.path, 'ramfs');
  fs.mkdirSync(dest);
  execFileSync('mount', ['-t', 'ramfs', 'ramfs', dest]);
  try {
    const src = join(dir.path, 'src');
    fs.mkdirSync(src);
    for (const n of ['a', 'b']) {
      fs.writeFileSync(join(src, n), n);
      execFileSync('setfattr', ['-n', 'user.k', '-v', n, join(src, n)]);
    }
    const lower = join(dir.path, 'lower');
    fs.mkdirSync(lower);
    const vol = await Volume.open(lower, ring, { sigs: [fileKey.sig], fnekSig: null });
    assert.deepEqual((await encryptTree(vol, [src])).problems, []);
    const d = await decryptTree(vol, [''], dest);
    assert.deepEqual(d.problems, []);
    assert.equal(fs.readFileSync(join(dest, 'a'), 'utf8'), 'a');
    assert.equal(d.notes.length, 1);
    assert.match(d.notes[0], /DEST refused 2 extended attributes \(EOPNOTSUPP; first: user\.k of .*\); the data is copied without them/);
  } finally {
    execFileSync('umount', [dest]);
    dir.cleanup();
  }
});

test('as root, owners are kept on what decrypt creates and only there', { skip: root ? false : 'chown needs root (CI runs as root)' }, async () => {
  const dir = tempDir('ecryptfs-types-');
  try {
    const src = join(dir.path, 'src');
    fs.mkdirSync(join(src, 'existing'), { recursive: true });
    fs.mkdirSync(join(src, 'made'));
    fs.writeFileSync(join(src, 'existing', 'f'), 'f');
    fs.writeFileSync(join(src, 'made', 'g'), 'g');
    fs.symlinkSync('made/g', join(src, 'link'));
    await mknodAt(join(src, 'fifo'), S_IFIFO | 0o600, 0);
    for (const p of ['existing', 'existing/f', 'made', 'made/g', 'link', 'fifo']) fs.lchownSync(join(src, p), 4321, 4322);
    const lower = join(dir.path, 'lower');
    fs.mkdirSync(lower);
    const vol = await Volume.open(lower, ring, { sigs: [fileKey.sig], fnekSig: fnekKey.sig });
    assert.deepEqual((await encryptTree(vol, [src])).problems, []);
    assert.equal(fs.lstatSync(join(lower, vol.encodeName('link'))).uid, 4321, 'encrypt keeps owners as root');
    const dest = join(dir.path, 'dest');
    fs.mkdirSync(join(dest, 'existing'), { recursive: true });
    const d = await decryptTree(vol, [''], dest);
    assert.deepEqual(d.problems, []);
    const owner = (p: string) => { const st = fs.lstatSync(join(dest, p)); return [st.uid, st.gid]; };
    assert.deepEqual(owner('existing'), [0, 0], 'a directory decrypt did not create keeps its owner');
    for (const p of ['existing/f', 'made', 'made/g', 'link', 'fifo']) assert.deepEqual(owner(p), [4321, 4322], p);
  } finally {
    dir.cleanup();
  }
});

test('hard links survive encrypt and decrypt, across directories and with byte names', async () => {
  const dir = tempDir('ecryptfs-types-');
  try {
    const src = join(dir.path, 'src');
    fs.mkdirSync(join(src, 'sub'), { recursive: true });
    fs.writeFileSync(join(src, 'a'), 'shared');
    fs.linkSync(join(src, 'a'), join(src, 'sub', 'b'));
    fs.linkSync(join(src, 'a'), Buffer.concat([Buffer.from(join(src, '/')), B('c\xe9')]));
    const lower = join(dir.path, 'lower');
    fs.mkdirSync(lower);
    const vol = await Volume.open(lower, ring, { sigs: [fileKey.sig], fnekSig: fnekKey.sig });
    assert.deepEqual((await encryptTree(vol, [src])).problems, []);
    const la = fs.statSync(join(lower, vol.encodeName('a')));
    assert.equal(la.nlink, 3);
    assert.equal(fs.statSync(join(lower, vol.encodeName('sub'), vol.encodeName('b'))).ino, la.ino);
    const dest = join(dir.path, 'dest');
    const d = await decryptTree(vol, [''], dest);
    assert.deepEqual(d.problems, []);
    const da = fs.statSync(join(dest, 'a'));
    assert.equal(da.nlink, 3);
    assert.equal(fs.statSync(join(dest, 'sub', 'b')).ino, da.ino);
    assert.equal(fs.statSync(Buffer.concat([Buffer.from(join(dest, '/')), B('c\xe9')])).ino, da.ino);
    assert.equal(fs.readFileSync(join(dest, 'sub', 'b'), 'utf8'), 'shared');
  } finally {
    dir.cleanup();
  }
});
