/** The seed's interactive `mount -t ecryptfs` session, typed on a pseudo-terminal. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync, rmSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMounted, mountSkipReason, sh } from './harness.js';
import { tempDir } from '../helpers/fixtures.js';
import { deriveKey } from '../../src/format/kdf.js';

const skip = mountSkipReason();
const DRIVER = fileURLToPath(new URL('../../../test/helpers/pty-driver.py', import.meta.url));
const BIN = fileURLToPath(new URL('../../../bin/', import.meta.url));

function drive(steps: Array<[string, string]>, cmd: string[], env: NodeJS.ProcessEnv): { code: number; out: string } {
  const r = spawnSync('python3', [DRIVER, JSON.stringify(steps), '--', ...cmd], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status ?? -1, out: (r.stdout ?? '').replace(/\r\n/g, '\n') };
}

const SESSION: Array<[string, string]> = [
  ['Passphrase: ', 'seed-session-passphrase'],
  ['Selection [aes]: ', ''],
  ['Selection [16]: ', ''],
  ['Enable plaintext passthrough (y/n) [n]: ', ''],
  ['Enable filename encryption (y/n) [n]: ', 'y'],
  ['Signature [', ''],
  ['(yes/no)? : ', 'yes'],
  ['(yes/no)? : ', 'yes'],
];

function checkTranscript(out: string, sig: string, home: string): void {
  const lines = [
    'Passphrase: ',
    'Select cipher: ',
    '1) aes: blocksize = 16; min keysize = 16; max keysize = 32 (loaded)',
    '6) cast5: blocksize = 8; min keysize = 5; max keysize = 16 (loaded)',
    'Selection [aes]: ',
    'Select key bytes: ',
    '1) 16\n2) 32\n3) 24',
    'Selection [16]: ',
    'Enable plaintext passthrough (y/n) [n]: ',
    'Enable filename encryption (y/n) [n]: y',
    `Filename Encryption Key (FNEK) Signature [${sig}]: `,
    `Attempting to mount with the following options:\n  ecryptfs_unlink_sigs\n  ecryptfs_fnek_sig=${sig}\n  ecryptfs_key_bytes=16\n  ecryptfs_cipher=aes\n  ecryptfs_sig=${sig}\n`,
    `WARNING: Based on the contents of [${home}/.ecryptfs/sig-cache.txt],\nit looks like you have never mounted with this key before.\nThis could mean that you have typed your passphrase wrong.\n\n`,
    'Would you like to proceed with the mount (yes/no)? : yes',
    `Would you like to append sig [${sig}] to [${home}/.ecryptfs/sig-cache.txt] \nin order to avoid this warning in the future (yes/no)? : yes`,
    'Successfully appended new sig to user sig cache file\nMounted eCryptfs',
  ];
  let at = 0;
  for (const l of lines) {
    const i = out.indexOf(l, at);
    assert.ok(i >= 0, `transcript has, in order: ${JSON.stringify(l)}\n--- transcript ---\n${out}`);
    at = i + l.length;
  }
  assert.ok(!out.includes('seed-session-passphrase'), 'the passphrase is not echoed');
}

test("mount -t ecryptfs's dialogue from the seed, answered on a pseudo-terminal", { skip }, async () => {
  const t = tempDir('ecryptfs-pty-');
  const home = join(t.path, 'home');
  const lower = join(t.path, 'encrypted');
  const upper = join(t.path, 'movies');
  for (const d of [home, lower, upper]) mkdirSync(d, { mode: 0o700 });
  const sig = deriveKey('seed-session-passphrase').sig;
  try {
    const r = drive(SESSION, [process.execPath, '--openssl-legacy-provider', join(BIN, 'ecryptfs.js'), 'mount', lower, upper], { HOME: home });
    assert.equal(r.code, 0, r.out);
    checkTranscript(r.out, sig, home);
    assert.equal(readFileSync(join(home, '.ecryptfs', 'sig-cache.txt'), 'utf8'), `${sig}\n`);
    assert.ok(isMounted(upper));
    // The seed's demonstration: a file written through the mount, one put straight into the lower dir.
    writeFileSync(join(upper, 'foo'), 'hello\n');
    writeFileSync(join(lower, 'bar'), 'world\n');
    const ls = sh(`ls ${upper}`).out.split('\n').filter(Boolean).sort();
    assert.deepEqual(ls, ['bar', 'foo']);
    const cat = sh(`cat ${join(upper, 'bar')}`);
    assert.notEqual(cat.code, 0);
    assert.match(cat.out, /Input\/output error/);
    assert.equal(readFileSync(join(upper, 'foo'), 'utf8'), 'hello\n');
    // A second mount with the same key does not warn (the sig is cached now).
    sh(`umount ${upper}`);
    const again = drive(SESSION.slice(0, 6), [process.execPath, '--openssl-legacy-provider', join(BIN, 'ecryptfs.js'), 'mount', lower, upper], { HOME: home });
    assert.equal(again.code, 0, again.out);
    assert.ok(!again.out.includes('WARNING'), again.out);
    assert.ok(again.out.includes('Mounted eCryptfs'));
  } finally {
    sh(`umount ${upper} 2>/dev/null || umount -l ${upper} 2>/dev/null`);
    t.cleanup();
  }
});

test('`mount -t ecryptfs` runs our mount.ecryptfs helper (bind-mounted over /sbin/mount.ecryptfs for the test)', { skip }, async () => {
  const t = tempDir('ecryptfs-mt-');
  const lower = join(t.path, 'lower');
  const upper = join(t.path, 'upper');
  mkdirSync(lower);
  mkdirSync(upper);
  const pw = join(t.path, 'pw');
  writeFileSync(pw, 'passphrase_passwd=helper-pass\n', { mode: 0o600 });
  const target = '/sbin/mount.ecryptfs';
  // A wrapper script: a bind mount cannot carry a symlink (README's install uses `ln -s`).
  const ours = join(t.path, 'mount.ecryptfs');
  writeFileSync(ours, `#!/bin/sh\nexec ${process.execPath} --openssl-legacy-provider ${join(BIN, 'mount.ecryptfs.js')} "$@"\n`);
  chmodSync(ours, 0o755);
  const created = !existsSync(target);
  if (created) writeFileSync(target, '');
  sh(`mount --bind ${ours} ${target}`);
  try {
    const r = sh(`mount -t ecryptfs ${lower} ${upper} -o key=passphrase:passphrase_passwd_file=${pw},ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n,no_sig_cache`);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /Attempting to mount with the following options:\n {2}ecryptfs_unlink_sigs\n {2}ecryptfs_key_bytes=16\n {2}ecryptfs_cipher=aes\n {2}ecryptfs_sig=[0-9a-f]{16}\nMounted eCryptfs/);
    writeFileSync(join(upper, 'f'), 'via mount -t');
    assert.equal(sh(`umount ${upper}`).code, 0);
    assert.ok(!isMounted(upper));
  } finally {
    sh(`umount ${upper} 2>/dev/null; umount ${target}`);
    if (created) rmSync(target, { force: true });
    t.cleanup();
  }
});
