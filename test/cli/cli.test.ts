/** The `ecryptfs` command end to end: decrypt, encrypt, ls, stat, fsck, errors. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { promises as fsp, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { manifest, tempDir, unpackLower } from '../helpers/fixtures.js';
import { ecryptfs, runCmd } from './run.js';

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

function passFile(dir: string, pass: string, name = 'pass'): string {
  const p = join(dir, name);
  writeFileSync(p, `${pass}\n`, { mode: 0o600 });
  return p;
}

function noStack(s: string): void {
  assert.ok(!/\n\s+at /.test(s), `no stack trace in: ${s}`);
}

test('decrypt a kernel-made lower directory into clear files with names, links, modes and mtimes', async () => {
  const m = manifest('aes256-fnek');
  const lower = await unpackLower('aes256-fnek');
  const out = tempDir();
  try {
    const r = await ecryptfs(['decrypt', lower.path, '-o', join(out.path, 'clear'), '--passphrase-file', passFile(out.path, m.passphrase)]);
    assert.equal(r.code, 0, r.stderr);
    for (const f of m.files) {
      const p = join(out.path, 'clear', f.path);
      if (f.type === 'file') assert.equal(sha(await fsp.readFile(p)), f.sha256, f.path);
      if (f.type === 'symlink') assert.equal(await fsp.readlink(p), f.symlink_target);
      if (f.type === 'dir') assert.ok((await fsp.stat(p)).isDirectory());
      if (f.mode && f.type !== 'symlink') assert.equal(((await fsp.lstat(p)).mode & 0o7777).toString(8), f.mode.replace(/^0o?/, '').replace(/^0+(?=\d{3})/, ''), `mode of ${f.path}`);
    }
    const lowerSt = await fsp.stat(join(lower.path, m.files.find((f) => f.type === 'file')!.lower!));
    const clearSt = await fsp.stat(join(out.path, 'clear', m.files.find((f) => f.type === 'file')!.path));
    assert.equal(clearSt.mtimeMs, lowerSt.mtimeMs, 'mtime kept');
  } finally {
    lower.cleanup();
    out.cleanup();
  }
});

test('a wrong passphrase is a clear error without a stack trace, and writes nothing', async () => {
  const lower = await unpackLower('aes128-plain');
  const out = tempDir();
  try {
    const r = await ecryptfs(['decrypt', lower.path, '-o', join(out.path, 'clear'), '--passphrase-file', passFile(out.path, 'not the passphrase')]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /encrypted with another key \(sig ea9454409d17f45d\)/);
    assert.match(r.stderr, /hello\.txt/);
    noStack(r.stderr);
    const written = await fsp.readdir(join(out.path, 'clear'), { recursive: true });
    const files = [];
    for (const w of written) if ((await fsp.lstat(join(out.path, 'clear', w))).isFile()) files.push(w);
    assert.deepEqual(files, [], 'no clear file written');
    assert.ok(!r.stderr.includes('not the passphrase'), 'the passphrase is never printed');
  } finally {
    lower.cleanup();
    out.cleanup();
  }
});

test('a lower file that is not eCryptfs is reported and skipped; --passthrough copies it', async () => {
  const m = manifest('aes128-nonecryptfs-file');
  const lower = await unpackLower('aes128-nonecryptfs-file');
  const out = tempDir();
  try {
    const pf = passFile(out.path, m.passphrase);
    const r = await ecryptfs(['decrypt', lower.path, '-o', join(out.path, 'a'), '--passphrase-file', pf]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /plain\.txt: not a valid eCryptfs file/);
    noStack(r.stderr);
    await assert.rejects(fsp.access(join(out.path, 'a', 'plain.txt')));
    assert.equal((await fsp.readFile(join(out.path, 'a', 'good.txt'))).toString(), 'good file\n');
    const p = await ecryptfs(['decrypt', lower.path, '-o', join(out.path, 'b'), '--passphrase-file', pf, '--passthrough']);
    assert.equal(p.code, 0, p.stderr);
    assert.deepEqual(await fsp.readFile(join(out.path, 'b', 'plain.txt')), await fsp.readFile(join(lower.path, 'plain.txt')));
  } finally {
    lower.cleanup();
    out.cleanup();
  }
});

test('encrypt then decrypt round-trips a tree for several ciphers, and ls shows clear names', async () => {
  const dir = tempDir();
  try {
    const src = join(dir.path, 'src');
    await fsp.mkdir(join(src, 'sub dir'), { recursive: true });
    await fsp.writeFile(join(src, 'a.txt'), 'alpha\n');
    await fsp.writeFile(join(src, 'sub dir', 'ünïcødé'), Buffer.alloc(70000, 7));
    await fsp.symlink('a.txt', join(src, 'link'));
    const pf = passFile(dir.path, 'cli-pass');
    for (const [cipher, kb] of [['aes', '32'], ['twofish', '16'], ['blowfish', '56']]) {
      const low = join(dir.path, `lower-${cipher}`);
      const e = await ecryptfs(['encrypt', src, '-o', low, '--cipher', cipher, '--key-bytes', kb, '--filename-crypto', '--passphrase-file', pf]);
      assert.equal(e.code, 0, e.stderr);
      assert.ok((await fsp.readdir(low)).every((n) => n.startsWith('ECRYPTFS_FNEK_ENCRYPTED.')));
      const ls = await ecryptfs(['ls', '-R', low, '--passphrase-file', pf]);
      assert.equal(ls.code, 0, ls.stderr);
      assert.deepEqual(ls.stdout.trim().split('\n').sort(), ['a.txt', 'link', 'sub dir/', 'sub dir/ünïcødé'].sort());
      const out = join(dir.path, `out-${cipher}`);
      const d = await ecryptfs(['decrypt', low, '-o', out, '--passphrase-file', pf]);
      assert.equal(d.code, 0, d.stderr);
      assert.equal(await fsp.readFile(join(out, 'a.txt'), 'utf8'), 'alpha\n');
      assert.deepEqual(await fsp.readFile(join(out, 'sub dir', 'ünïcødé')), Buffer.alloc(70000, 7));
      assert.equal(await fsp.readlink(join(out, 'link')), 'a.txt');
    }
  } finally {
    dir.cleanup();
  }
});

test('stat prints what ecryptfs-stat prints', async () => {
  const lower = await unpackLower('aes128-plain');
  try {
    const r = await ecryptfs(['stat', join(lower.path, 'hello.txt')]);
    assert.equal(r.code, 0);
    assert.equal(
      r.stdout,
      'File version: [3]\nDecrypted file size: [6]\nNumber of header bytes at front of file: [8192]\nMetadata in the header region\nEncrypted\nHMAC disabled\n',
    );
    const bad = await ecryptfs(['stat', '/etc/hostname']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /not an eCryptfs file/);
  } finally {
    lower.cleanup();
  }
});

test('fsck tells valid, not eCryptfs, other key, truncated and undecodable names apart', async () => {
  const dir = tempDir();
  try {
    const pf = passFile(dir.path, 'fsck-pass');
    const other = passFile(dir.path, 'another-pass', 'other');
    const src = join(dir.path, 'src');
    await fsp.mkdir(src);
    await fsp.writeFile(join(src, 'good'), 'good');
    await fsp.writeFile(join(src, 'long'), Buffer.alloc(20000, 1));
    const low = join(dir.path, 'lower');
    assert.equal((await ecryptfs(['encrypt', src, '-o', low, '--filename-crypto', '--passphrase-file', pf])).code, 0);
    const src2 = join(dir.path, 'src2');
    await fsp.mkdir(src2);
    await fsp.writeFile(join(src2, 'foreign'), 'x');
    const low2 = join(dir.path, 'lower2');
    assert.equal((await ecryptfs(['encrypt', src2, '-o', low2, '--passphrase-file', other])).code, 0);
    await fsp.rename(join(low2, 'foreign'), join(low, 'foreign'));
    await fsp.writeFile(join(low, 'plain.txt'), 'I am not encrypted\n');
    const names = await fsp.readdir(low);
    // Truncate the 20000-byte file's lower below what its size field needs.
    for (const n of names) {
      const st = await fsp.stat(join(low, n));
      if (st.size > 20000) await fsp.truncate(join(low, n), 12288);
    }
    await fsp.mkdir(join(low, 'ECRYPTFS_FNEK_ENCRYPTED.garbage-name'));
    const r = await ecryptfs(['fsck', low, '--passphrase-file', pf]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^ok\s+\S+ \(good\)/m);
    assert.match(r.stdout, /^not-ecryptfs\s+plain\.txt/m);
    assert.match(r.stdout, /^other-key\s+foreign: encrypted with another key: sig [0-9a-f]{16}/m);
    assert.match(r.stdout, /^damaged\s+\S+ \(long\): truncated/m);
    assert.match(r.stdout, /^bad-name\s+ECRYPTFS_FNEK_ENCRYPTED\.garbage-name/m);
    assert.match(r.stdout, /1 not eCryptfs, 1 of another key, 1 damaged, 1 bad names/);
    const clean = await ecryptfs(['fsck', low2, '--passphrase-file', other]);
    assert.equal(clean.code, 0, clean.stdout);
  } finally {
    dir.cleanup();
  }
});

test('no passphrase on a non-terminal stdin is an error, never a hang', async () => {
  const lower = await unpackLower('aes128-plain');
  try {
    const r = await ecryptfs(['ls', lower.path]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /standard input is not a terminal/);
  } finally {
    lower.cleanup();
  }
});

test('keys from a wrapped-passphrase file and the login password (an ecryptfs-setup-private home)', async () => {
  const m = manifest('setup-private') as unknown as { passphrase: string; login_passphrase: string; dot_ecryptfs: Record<string, { hex: string | null; text: string | null }>; files: Array<{ path: string; type: string; sha256?: string }> };
  const lower = await unpackLower('setup-private');
  const out = tempDir();
  try {
    const wp = join(out.path, 'wrapped-passphrase');
    await fsp.writeFile(wp, Buffer.from(m.dot_ecryptfs['wrapped-passphrase'].hex!, 'hex'));
    const login = passFile(out.path, m.login_passphrase, 'login');
    const r = await ecryptfs(['decrypt', lower.path, '-o', join(out.path, 'clear'), '--wrapped-passphrase', wp, '--login-password-file', login]);
    assert.equal(r.code, 0, r.stderr);
    for (const f of m.files.filter((x) => x.type === 'file' && x.sha256)) assert.equal(sha(await fsp.readFile(join(out.path, 'clear', f.path))), f.sha256, f.path);
    const bad = await ecryptfs(['ls', lower.path, '--wrapped-passphrase', wp, '--login-password-file', passFile(out.path, 'wrong', 'bad')]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /wrapped-passphrase: wrong wrapping passphrase/);
    // The library's ~/.ecryptfs source: wrapped-passphrase + Private.sig name both keys.
    const dot = join(out.path, '.ecryptfs');
    await fsp.mkdir(dot);
    await fsp.copyFile(wp, join(dot, 'wrapped-passphrase'));
    await fsp.writeFile(join(dot, 'Private.sig'), m.dot_ecryptfs['Private.sig'].text!);
    const { resolveKeys } = await import('../../src/volume/keysource.js');
    const k = await resolveKeys({ ecryptfsDir: dot, loginPassword: m.login_passphrase });
    assert.deepEqual([k.fileSig, k.fnekSig], m.dot_ecryptfs['Private.sig'].text!.trim().split('\n'));
    k.ring.destroy();
  } finally {
    lower.cleanup();
    out.cleanup();
  }
});

test('a reader that goes away (ls | head) ends the command quietly, as SIGPIPE ends a C tool', async () => {
  const demo = new URL('../../../demo/', import.meta.url).pathname;
  const main = new URL('../../src/cli/main.js', import.meta.url).pathname;
  const r = await runCmd('sh', ['-c', `${process.execPath} --openssl-legacy-provider ${main} ls -R -l ${demo}vault --passphrase-file ${demo}passphrase.txt | head -c 10 >/dev/null; echo "status \${PIPESTATUS:-}"`]);
  assert.equal(r.stderr, '', 'no stack trace, no EPIPE');
});
