/** The ecryptfs-utils key tools under their names, checked against the real ecryptfs-utils. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES, tempDir, unpackLower } from '../helpers/fixtures.js';
import { runCmd, tool } from './run.js';

function has(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
const REAL = has('ecryptfs-unwrap-passphrase') ? false : 'the real ecryptfs-utils is not installed (apt-get install ecryptfs-utils)';
const KEYCTL = has('keyctl') ? false : 'keyctl (keyutils) is not installed';

test('unwrap reads every wrapped-passphrase file made by the real tools', async () => {
  const dir = join(FIXTURES, 'corpus', 'userspace-keys', 'wrapped');
  const pairs = readFileSync(join(dir, 'pairs.tsv'), 'utf8').trim().split('\n').map((l) => l.split('\t'));
  for (const [file, pass, wrap] of pairs) {
    for (const f of [file, `${file}-again`]) {
      const r = await tool('ecryptfs-unwrap-passphrase', [join(dir, f), '-'], `${wrap}\n`);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${pass}\n`);
    }
  }
  const wrong = await tool('ecryptfs-unwrap-passphrase', [join(dir, 'wrapped-1'), '-'], 'nope\n');
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /^Error: Unwrapping passphrase failed \[-5\]/);
  assert.ok(!wrong.stderr.includes('nope'));
});

test('wrap writes a v2 file with mode 0600 that the real ecryptfs-unwrap-passphrase reads', { skip: REAL }, async () => {
  const d = tempDir();
  try {
    const f = join(d.path, 'wrapped');
    const w = await tool('ecryptfs-wrap-passphrase', [f, '-'], 'f00dfeedcafebabe0123456789abcdef\nmy login pw\n');
    assert.equal(w.code, 0, w.stderr);
    assert.equal((await fsp.stat(f)).mode & 0o777, 0o600);
    const data = await fsp.readFile(f);
    assert.equal(data.length, 58);
    assert.deepEqual([...data.subarray(0, 2)], [0x3a, 0x02]);
    const real = await runCmd('ecryptfs-unwrap-passphrase', [f, '-'], 'my login pw');
    assert.equal(real.stdout.trim(), 'f00dfeedcafebabe0123456789abcdef', real.stderr);
    // Rewrap with ours, read with the real tool again.
    const rw = await tool('ecryptfs-rewrap-passphrase', [f, '-'], 'my login pw\nnew pw\n');
    assert.equal(rw.code, 0, rw.stderr);
    assert.equal((await runCmd('ecryptfs-unwrap-passphrase', [f, '-'], 'new pw')).stdout.trim(), 'f00dfeedcafebabe0123456789abcdef');
    assert.equal((await fsp.stat(f)).mode & 0o777, 0o600);
  } finally {
    d.cleanup();
  }
});

test('unwrap reads what the real ecryptfs-wrap-passphrase writes here', { skip: REAL }, async () => {
  const d = tempDir();
  try {
    const f = join(d.path, 'w');
    const real = await runCmd('ecryptfs-wrap-passphrase', [f, '-'], 'abc-mount-pass\nwrap me');
    assert.equal(real.code, 0, real.stderr);
    const r = await tool('ecryptfs-unwrap-passphrase', [f, '-'], 'wrap me');
    assert.equal(r.stdout, 'abc-mount-pass\n');
  } finally {
    d.cleanup();
  }
});

test('ecryptfs-stat output equals the real tool on kernel-made files', { skip: REAL }, async () => {
  const lower = await unpackLower('aes128-plain');
  try {
    for (const f of ['hello.txt', 'size0', 'size1048576']) {
      const ours = await tool('ecryptfs-stat', [join(lower.path, f)]);
      const real = await runCmd('ecryptfs-stat', [join(lower.path, f)]);
      assert.equal(ours.stdout, real.stdout, f);
    }
  } finally {
    lower.cleanup();
  }
});

test('add-passphrase prints the sigs and puts a kernel-readable auth token into the user keyring', { skip: KEYCTL }, async () => {
  const sigs = ['2a97418edca01eb9', '33a5d5e39463d53f'];
  const clean = () => Promise.all(sigs.map((s) => runCmd('sh', ['-c', `id=$(keyctl search @u user ${s}) && keyctl unlink $id @u`])));
  await clean();
  try {
    const r = await tool('ecryptfs-add-passphrase', ['--fnek', '-'], 'test123');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, sigs.map((s) => `Inserted auth tok with sig [${s}] into the user session keyring\n`).join(''));
    const ours = await runCmd('sh', ['-c', `keyctl pipe $(keyctl search @u user ${sigs[0]}) | od -An -tx1 -v`]);
    await clean();
    if (!REAL) {
      const real = await runCmd('ecryptfs-add-passphrase', ['-'], 'test123');
      assert.equal(real.code, 0);
      const theirs = await runCmd('sh', ['-c', `keyctl pipe $(keyctl search @u user ${sigs[0]}) | od -An -tx1 -v`]);
      assert.equal(ours.stdout, theirs.stdout, 'same 740-byte payload as ecryptfs-add-passphrase');
    }
  } finally {
    await clean();
  }
});
