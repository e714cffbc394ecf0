/**
 * The CLI with byte names, hostile names, special files and xattrs (issues #12 item 4, #13):
 * `ecryptfs encrypt`, `ls`, `fsck`, `decrypt` and `ecryptfs-rewrite-file`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { encryptFilename } from '../../src/format/filename.js';
import { mknodAt, S_IFIFO } from '../../src/lower/mknod.js';
import { getXattrIfAny } from '../../src/lower/xattr.js';
import { KeyRing } from '../../src/volume/keyring.js';
import { tempDir } from '../helpers/fixtures.js';
import { BIN, ecryptfs, runCmd } from './run.js';

const B = (s: string) => Buffer.from(s, 'latin1');
const cat = (...p: Array<string | Buffer>) => Buffer.concat(p.map((x) => Buffer.from(x)));
const PASS = 'names-cli-pass';
const MAIN = join(BIN, '..', 'dist', 'src', 'cli', 'main.js');
/** `ecryptfs ARGS` through sh in `cwd`, so that ARGS may hold bytes argv cannot carry as UTF-8 ($(printf ...)). */
const cliIn = (cwd: string) => (args: string) => runCmd('sh', ['-c', `cd "${cwd}" && exec "${process.execPath}" --openssl-legacy-provider "${MAIN}" ${args}`]);

test('encrypt, ls, fsck and decrypt keep Latin-1 names as bytes, keep FIFOs and xattrs, and contain hostile names', async () => {
  const dir = tempDir('ecryptfs-namescli-');
  try {
    const pf = join(dir.path, 'pass');
    fs.writeFileSync(pf, `${PASS}\n`, { mode: 0o600 });
    const src = join(dir.path, 'src');
    fs.mkdirSync(join(src, 'sub'), { recursive: true });
    fs.writeFileSync(cat(src, '/', B('caf\xe9.txt')), 'latin-1 name');
    fs.writeFileSync(join(src, 'sub', 'x'), 'x');
    execFileSync('setfattr', ['-n', 'user.tag', '-v', 'kept', join(src, 'sub', 'x')]);
    await mknodAt(join(src, 'pipe'), S_IFIFO | 0o600, 0);
    const low = join(dir.path, 'low');
    const e = await ecryptfs(['encrypt', src, '-o', low, '--filename-crypto', '--passphrase-file', pf]);
    assert.equal(e.code, 0, e.stderr);
    assert.ok(fs.readdirSync(low).every((n) => n.startsWith('ECRYPTFS_FNEK_ENCRYPTED.')));

    // Hostile lower names, made with the volume's own FNEK (anyone holding the key can).
    const ring = new KeyRing();
    const [, fnek] = ring.addPassphraseSync(PASS);
    const enc = (s: string) => encryptFilename(B(s), fnek, 'aes', 16);
    const goodLower = fs.readdirSync(low).find((n) => fs.statSync(join(low, n)).isFile() && fs.statSync(join(low, n)).size > 0)!;
    fs.copyFileSync(join(low, goodLower), join(low, enc('../../escaped')));
    fs.copyFileSync(join(low, goodLower), join(low, enc('a/b')));
    fs.mkdirSync(join(low, enc('..')));
    fs.copyFileSync(join(low, goodLower), join(low, enc('..'), enc('inner')));

    const ls = await ecryptfs(['ls', '-R', low, '--passphrase-file', pf]);
    assert.equal(ls.code, 1);
    assert.deepEqual(ls.stdout.trim().split('\n').sort(), ['caf\\xe9.txt', 'pipe', 'sub/', 'sub/x']);
    assert.equal(ls.stderr.match(/bad-name/g)?.length, 3, ls.stderr);
    assert.match(ls.stderr, /not a file name/);
    const ll = await ecryptfs(['ls', '-l', low, '--passphrase-file', pf]);
    assert.match(ll.stdout, /^p 0600 +0 \S+ pipe$/m);
    assert.match(ll.stdout, /^- 0644 +12 \S+ caf\\xe9\.txt$/m);
    const one = await ecryptfs(['ls', '-l', low, 'caf\\xe9.txt', '--passphrase-file', pf]);
    assert.equal(one.code, 1); // the argument names a file; ls lists directories
    const sub = await ecryptfs(['ls', low, 'sub', '--passphrase-file', pf]);
    assert.equal(sub.stdout, 'sub/x\n');

    const fk = await ecryptfs(['fsck', low, '--passphrase-file', pf]);
    assert.equal(fk.code, 1);
    assert.equal(fk.stdout.match(/^bad-name /gm)?.length, 3, fk.stdout);
    assert.match(fk.stdout, /^ok +\S+ \(caf\\xe9\.txt\): size 12, sig [0-9a-f]{16} \(name is not UTF-8/m);
    assert.match(fk.stdout, /^ok +\S+ \(pipe\): fifo$/m);
    assert.match(fk.stdout, /3 bad names/);

    const dest = join(dir.path, 'out', 'dest');
    const d = await ecryptfs(['decrypt', low, '-o', dest, '--passphrase-file', pf]);
    assert.equal(d.code, 1);
    assert.equal(d.stderr.match(/not a file name/g)?.length, 3, d.stderr);
    assert.doesNotMatch(d.stderr, /\n\s+at /, 'no stack trace');
    assert.deepEqual(fs.readdirSync(join(dir.path, 'out')), ['dest']);
    assert.ok(!fs.existsSync(join(dir.path, 'escaped')) && !fs.existsSync(join(dir.path, 'inner')));
    assert.deepEqual(fs.readdirSync(dest, { encoding: 'buffer' }).map((b) => b.toString('hex')).sort(), [B('caf\xe9.txt'), B('pipe'), B('sub')].map((b) => b.toString('hex')).sort());
    assert.equal(fs.readFileSync(cat(dest, '/', B('caf\xe9.txt')), 'utf8'), 'latin-1 name');
    assert.ok(fs.lstatSync(join(dest, 'pipe')).isFIFO());
    assert.deepEqual(await getXattrIfAny(join(dest, 'sub', 'x'), 'user.tag'), Buffer.from('kept'));
  } finally {
    dir.cleanup();
  }
});

test('ecryptfs-rewrite-file takes a Latin-1 name from argv as bytes and keeps xattrs and ACLs', async () => {
  const dir = tempDir('ecryptfs-namescli-');
  try {
    const f = cat(dir.path, '/', B('r\xe9sum\xe9'));
    fs.writeFileSync(f, 'contents');
    fs.chmodSync(f, 0o640);
    const name = `"${dir.path}/$(printf 'r\\351sum\\351')"`; // argv cannot carry the bytes from Node: the shell makes them
    execFileSync('sh', ['-c', `setfattr -n user.note -v stay ${name}`]);
    const acl = execFileSync('sh', ['-c', 'command -v setfacl || true'], { encoding: 'utf8' }).trim() !== '';
    if (acl) execFileSync('sh', ['-c', `setfacl -m u:4321:r ${name}`]);
    const r = await runCmd('sh', ['-c', `cd "${dir.path}" && exec "${process.execPath}" "${BIN}ecryptfs-rewrite-file.js" "$(printf 'r\\351sum\\351')"`]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /\[r\\xe9sum\\xe9\] \.\.\. \[OK\]/);
    assert.equal(fs.readFileSync(f, 'utf8'), 'contents');
    assert.equal(fs.statSync(f).mode & 0o777, 0o640);
    assert.equal(execFileSync('sh', ['-c', `getfattr --only-values -n user.note ${name}`], { encoding: 'utf8' }), 'stay');
    if (acl) assert.match(execFileSync('sh', ['-c', `getfacl -cp ${name}`], { encoding: 'utf8' }), /user:4321:r--/);
    assert.deepEqual(fs.readdirSync(dir.path, { encoding: 'buffer' }).map((b) => b.toString('hex')), [B('r\xe9sum\xe9').toString('hex')]);
  } finally {
    dir.cleanup();
  }
});

test('encrypt and decrypt take Latin-1 SRC and DEST arguments as bytes; ls --json gives names as base64 too', async () => {
  const dir = tempDir('ecryptfs-namescli-');
  try {
    const pf = join(dir.path, 'pass');
    fs.writeFileSync(pf, `${PASS}\n`, { mode: 0o600 });
    const src = cat(dir.path, '/', B('s\xe9'));
    fs.mkdirSync(src);
    fs.writeFileSync(cat(src, '/', B('f\xe9')), 'data');
    const sh = cliIn(dir.path);
    const e = await sh(`encrypt "$(printf 's\\351')" -o low --filename-crypto --passphrase-file pass`);
    assert.equal(e.code, 0, e.stderr);
    const d = await sh(`decrypt low -o "$(printf 'd\\351')" --passphrase-file pass`);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(fs.readFileSync(cat(dir.path, '/', B('d\xe9'), '/', B('f\xe9')), 'utf8'), 'data');
    const j = await ecryptfs(['ls', '--json', join(dir.path, 'low'), '--passphrase-file', pf]);
    assert.equal(j.code, 0, j.stderr);
    const rows = j.stdout.trim().split('\n').map((l) => JSON.parse(l) as { path: string; pathBase64: string; type: string; size: number; mode: number });
    assert.equal(rows.length, 1);
    assert.equal(rows[0].path, 'f\\xe9');
    assert.deepEqual(Buffer.from(rows[0].pathBase64, 'base64'), B('f\xe9'));
    assert.equal(rows[0].type, 'file');
    assert.equal(rows[0].size, 4);
  } finally {
    dir.cleanup();
  }
});

test('decrypt SRC, ls and fsck LOWERDIR and encrypt -o LOWERDIR work in a directory whose name is not UTF-8', async () => {
  const dir = tempDir('ecryptfs-namescli-');
  try {
    fs.writeFileSync(join(dir.path, 'pass'), `${PASS}\n`, { mode: 0o600 });
    // \xe9 and \xff alone are no UTF-8: Node's argv has U+FFFD for both, so only the raw bytes name them
    const top = cat(dir.path, '/', B('t\xe9'));
    fs.mkdirSync(top);
    fs.mkdirSync(cat(top, '/', B('src\xff')));
    fs.writeFileSync(cat(top, '/', B('src\xff'), '/', 'f'), 'data');
    const sh = cliIn(dir.path);
    const T = `"$(printf 't\\351')"`;
    const e = await sh(`encrypt ${T}/"$(printf 'src\\377')" -o ${T}/"$(printf 'low\\377')" --filename-crypto --passphrase-file pass`);
    assert.equal(e.code, 0, e.stderr);
    const low = cat(top, '/', B('low\xff'));
    assert.equal(fs.readdirSync(low).length, 1, 'the lower directory was made under its own bytes');
    const l = await sh(`ls -l ${T}/"$(printf 'low\\377')" --passphrase-file pass`);
    assert.equal(l.code, 0, l.stderr);
    assert.match(l.stdout, /^- \d{4} +4 .* f\n$/);
    const f = await sh(`fsck ${T}/"$(printf 'low\\377')" --passphrase-file pass`);
    assert.equal(f.code, 0, f.stderr + f.stdout);
    assert.match(f.stdout, /1 entries: 1 ok/);
    // a directory SRC, and a file SRC in it (its dirname is the lower directory)
    const d = await sh(`decrypt ${T}/"$(printf 'low\\377')" -o out1 --passphrase-file pass`);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(fs.readFileSync(join(dir.path, 'out1', 'f'), 'utf8'), 'data');
    const lowerName = fs.readdirSync(low)[0];
    const d2 = await sh(`decrypt ${T}/"$(printf 'low\\377')"/${lowerName} -o out2 --passphrase-file pass`);
    assert.equal(d2.code, 0, d2.stderr);
    assert.equal(fs.readFileSync(join(dir.path, 'out2', 'f'), 'utf8'), 'data');
    const st = await sh(`stat ${T}/"$(printf 'low\\377')"/${lowerName}`);
    assert.equal(st.code, 0, st.stderr);
    assert.match(st.stdout, /Decrypted file size: \[4\]/);
    const est = await runCmd('sh', ['-c', `cd "${dir.path}" && exec "${process.execPath}" "${BIN}ecryptfs-stat.js" ${T}/"$(printf 'low\\377')"/${lowerName}`]);
    assert.equal(est.stdout, st.stdout, est.stderr);
  } finally {
    dir.cleanup();
  }
});
