/**
 * Mount options that do what the kernel does with them: ecryptfs_unlink_sigs however the mount
 * goes (plain umount, umount -l), ecryptfs_check_dev_ruid, ecryptfs_mount_auth_tok_only;
 * key=passphrase:passphrase_passwd_fd=N (ecryptfs mount and `mount -t ecryptfs`); every option
 * checked before the first question; ~/.ecryptfsrc defaults.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, promises as fsp, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deriveKey, DEFAULT_SALT } from '../../src/format/kdf.js';
import { tempDir } from '../helpers/fixtures.js';
import { freshUser, isMounted, mountSkipReason, mountVolume, openDevFuse, runAs, sh } from './harness.js';

const skip = mountSkipReason() || (sh('keyctl show @u').code !== 0 ? 'no kernel keyring (keyctl)' : false);
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const BIN = fileURLToPath(new URL('../../../bin/', import.meta.url));
const DRIVER = fileURLToPath(new URL('../../../test/helpers/pty-driver.py', import.meta.url));
const node = `${process.execPath} --openssl-legacy-provider`;
const OPTS = 'ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n,no_sig_cache';

const inKeyring = (sig: string) => sh(`keyctl search @u user ${sig}`).code === 0;
const unlinkSig = (sig: string) => sh(`id=$(keyctl search @u user ${sig} 2>/dev/null) && keyctl unlink $id @u`);
const unique = (what: string) => `${what}-${process.pid}-${Date.now()}`;

async function waitUnmounted(upper: string): Promise<void> {
  for (let i = 0; i < 100 && isMounted(upper); i++) await new Promise((r) => setTimeout(r, 50));
}

/** The daemon unlinks the keys as it ends, a moment after the kernel has let the mount go. */
async function waitGone(sig: string): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if (!inKeyring(sig)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

for (const how of ['umount', 'umount -l', `${node} ${join(BIN, 'umount.ecryptfs.js')}`]) {
  test(`ecryptfs_unlink_sigs: \`${how.replace(/^.* \/.*\//, '')} UPPER\` removes the mount's keys from the user keyring`, { skip }, async () => {
    const pass = unique('unlink');
    const sig = deriveKey(pass, DEFAULT_SALT).sig;
    const m = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n', { passphrase: pass });
    try {
      assert.ok(inKeyring(sig), 'the mount put its key in @u, as mount.ecryptfs does');
      await fsp.writeFile(join(m.upper, 'f'), 'x');
      const u = sh(`${how} ${m.upper}`);
      assert.equal(u.code, 0, u.out);
      await waitUnmounted(m.upper);
      assert.ok(await waitGone(sig), `the key left @u after ${how}`);
    } finally {
      unlinkSig(sig);
      await m.cleanup();
    }
  });
}

test('ecryptfs_unlink_sigs: an ordinary user\'s `fusermount3 -u UPPER` removes the keys from that user\'s keyring', { skip: skip || (sh('command -v fusermount3').code !== 0 ? 'needs fusermount3 (fuse3)' : false) }, async () => {
  openDevFuse();
  const USER = 'etopt4';
  const { home } = freshUser(USER);
  const pass = unique('user-unlink');
  const sig = deriveKey(pass, DEFAULT_SALT).sig;
  try {
    const add = runAs(USER, `${node} ${join(BIN, 'ecryptfs-add-passphrase.js')} - && mkdir ~/l ~/u && ${node} ${CLI} mount ~/l ~/u -o ecryptfs_sig=${sig},${OPTS},ecryptfs_unlink_sigs && echo x > ~/u/f`, pass);
    assert.equal(add.code, 0, add.out);
    assert.ok(isMounted(`${home}/u`));
    assert.match(runAs(USER, 'keyctl list @u').out, new RegExp(sig));
    const u = runAs(USER, 'fusermount3 -u ~/u');
    assert.equal(u.code, 0, u.out);
    await waitUnmounted(`${home}/u`);
    let gone = false;
    for (let i = 0; i < 100 && !gone; i++) {
      gone = !runAs(USER, 'keyctl list @u').out.includes(sig);
      if (!gone) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(gone, 'the key left the user keyring after fusermount3 -u');
  } finally {
    sh(`fusermount3 -uz ${home}/u 2>/dev/null; umount -l ${home}/u 2>/dev/null; pkill -9 -u ${USER}; userdel -r ${USER} 2>/dev/null`);
  }
});

test('ecryptfs_check_dev_ruid refuses a lower directory another user owns, before any question', { skip }, async () => {
  const { uid } = freshUser('etopt1');
  const t = tempDir('ecryptfs-ruid-');
  try {
    const lower = join(t.path, 'lower');
    const upper = join(t.path, 'upper');
    mkdirSync(lower);
    mkdirSync(upper);
    writeFileSync(join(t.path, 'pw'), 'passphrase_passwd=ruid-pass\n');
    sh(`chown etopt1 ${lower}`);
    const r = sh(`${node} ${CLI} mount ${lower} ${upper} -o key=passphrase:passphrase_passwd_file=${t.path}/pw,ecryptfs_check_dev_ruid,${OPTS}`);
    assert.notEqual(r.code, 0);
    assert.match(r.out, new RegExp(`Mount of device \\(uid: ${uid}\\) not owned by requested user \\(uid: 0\\)`));
    assert.doesNotMatch(r.out, /Attempting to mount/);
    assert.ok(!isMounted(upper));
    // The lower directory of the user who mounts is fine.
    sh(`chown root ${lower}`);
    const ok = sh(`${node} ${CLI} mount ${lower} ${upper} -o key=passphrase:passphrase_passwd_file=${t.path}/pw,ecryptfs_check_dev_ruid,${OPTS}`);
    assert.equal(ok.code, 0, ok.out);
    assert.ok(isMounted(upper));
    sh(`umount ${upper}`);
    await waitUnmounted(upper);
  } finally {
    sh(`umount -l ${t.path}/upper 2>/dev/null; userdel -r etopt1 2>/dev/null`);
    unlinkSig(deriveKey('ruid-pass', DEFAULT_SALT).sig);
    t.cleanup();
  }
});

/** A mount of `options` on `lower` with `passphrase`, for `body`, unmounted afterwards. */
async function withMount(options: string, args: { lower: string; passphrase: string }, body: (upper: string) => Promise<void>): Promise<void> {
  const m = await mountVolume(options, args);
  try {
    await body(m.upper);
  } finally {
    await m.cleanup();
  }
}

/**
 * Key B writes into a fresh lower directory (`writeB`) and is then left in the user keyring, as
 * ecryptfs-add-passphrase leaves it; `body` mounts that lower directory with key A. Both keys
 * leave the keyring afterwards.
 */
async function keyBInKeyring(what: string, options: string, writeB: (upper: string) => Promise<void>, body: (t: { lower: string; passA: string; sigB: string }) => Promise<void>): Promise<void> {
  const passA = unique(`${what}-a`);
  const passB = unique(`${what}-b`);
  const [sigA, sigB] = [deriveKey(passA, DEFAULT_SALT).sig, deriveKey(passB, DEFAULT_SALT).sig];
  const t = tempDir(`ecryptfs-authtok-${what}-`);
  const lower = join(t.path, 'lower');
  mkdirSync(lower);
  try {
    await withMount(options, { lower, passphrase: passB }, writeB);
    const add = spawnSync(process.execPath, ['--openssl-legacy-provider', join(BIN, 'ecryptfs-add-passphrase.js'), '-'], { input: passB, encoding: 'utf8' });
    assert.equal(add.status, 0, add.stderr);
    await body({ lower, passA, sigB });
  } finally {
    unlinkSig(sigA);
    unlinkSig(sigB);
    t.cleanup();
  }
}

test('ecryptfs_mount_auth_tok_only: a file of another key in the keyring opens without it (as the kernel), not with it', { skip }, async () => {
  const opts = 'ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n';
  await keyBInKeyring('key', opts, (upper) => fsp.writeFile(join(upper, 'of-b'), 'written under key B'), async ({ lower, passA, sigB }) => {
    // Key B in the user keyring; the mount gets key A only.
    assert.ok(inKeyring(sigB));
    await withMount(opts, { lower, passphrase: passA }, async (upper) => {
      assert.equal(await fsp.readFile(join(upper, 'of-b'), 'utf8'), 'written under key B', 'the keyring key opens it');
    });
    await withMount(`${opts},ecryptfs_mount_auth_tok_only`, { lower, passphrase: passA }, async (upper) => {
      await assert.rejects(fsp.readFile(join(upper, 'of-b'), 'utf8'), /EIO/, 'only the mount\'s own key may open files');
      await fsp.writeFile(join(upper, 'of-a'), 'mine');
      assert.equal(await fsp.readFile(join(upper, 'of-a'), 'utf8'), 'mine');
    });
  });
});

test('ecryptfs_mount_auth_tok_only: names under another FNEK in the keyring are listed without it (as the kernel), hidden with it', { skip }, async () => {
  const fn = 'ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y';
  await keyBInKeyring('fnek', fn, (upper) => fsp.writeFile(join(upper, 'named-by-b'), 'b'), async ({ lower, passA }) => {
    await withMount(fn, { lower, passphrase: passA }, async (upper) => {
      await fsp.writeFile(join(upper, 'named-by-a'), 'a');
      assert.deepEqual((await fsp.readdir(upper)).sort(), ['named-by-a', 'named-by-b'], 'the keyring key decodes the name');
    });
    await withMount(`${fn},ecryptfs_mount_auth_tok_only`, { lower, passphrase: passA }, async (upper) => {
      assert.deepEqual(await fsp.readdir(upper), ['named-by-a'], 'only the mount\'s own FNEK decodes names');
    });
  });
});

test('key=passphrase:passphrase_passwd_fd=N reads the passphrase from that descriptor (ecryptfs mount and mount -t ecryptfs)', { skip }, async () => {
  const t = tempDir('ecryptfs-passfd-');
  const lower = join(t.path, 'lower');
  const upper = join(t.path, 'upper');
  mkdirSync(lower);
  mkdirSync(upper);
  const pass = unique('fd-pass');
  const sig = deriveKey(pass, DEFAULT_SALT).sig;
  writeFileSync(join(t.path, 'pw'), `passphrase_passwd=${pass}\n`, { mode: 0o600 });
  const target = '/sbin/mount.ecryptfs';
  const created = !existsSync(target);
  let bound = false;
  try {
    const r = sh(`${node} ${CLI} mount ${lower} ${upper} -o key=passphrase:passphrase_passwd_fd=3,${OPTS} 3<${t.path}/pw && ${node} ${CLI} mounts`);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`on ${upper} type ecryptfs \\(.*ecryptfs_sig=${sig}`), 'mounted with the key of the passphrase on fd 3');
    await fsp.writeFile(join(upper, 'f'), 'through fd');
    sh(`umount ${upper}`);
    await waitUnmounted(upper);
    // A descriptor that is not open is refused, and before any question.
    const closed = sh(`${node} ${CLI} mount ${lower} ${upper} -o key=passphrase:passphrase_passwd_fd=7,${OPTS}`);
    assert.notEqual(closed.code, 0);
    assert.match(closed.out, /passphrase_passwd_fd=7: cannot read that descriptor/);
    // mount(8) passes the descriptor on to the helper.
    const ours = join(t.path, 'mount.ecryptfs');
    writeFileSync(ours, `#!/bin/sh\nexec ${node} ${join(BIN, 'mount.ecryptfs.js')} "$@"\n`);
    chmodSync(ours, 0o755);
    if (created) writeFileSync(target, '');
    assert.equal(sh(`mount --bind ${ours} ${target}`).code, 0);
    bound = true;
    const m = sh(`printf 'passphrase_passwd=${pass}\\n' | mount -t ecryptfs ${lower} ${upper} -o key=passphrase:passphrase_passwd_fd=0,${OPTS}`);
    assert.equal(m.code, 0, m.out);
    assert.match(m.out, new RegExp(`ecryptfs_sig=${sig}\\nMounted eCryptfs`));
    assert.equal(readFileSync(join(upper, 'f'), 'utf8'), 'through fd');
  } finally {
    sh(`umount ${upper} 2>/dev/null`);
    await waitUnmounted(upper);
    if (bound) sh(`umount ${target}`);
    if (created) rmSync(target, { force: true });
    unlinkSig(sig);
    t.cleanup();
  }
});

test('bad options are refused before the first question (on a terminal)', { skip: skip || (sh('command -v python3').code !== 0 ? 'needs python3 for the pseudo-terminal' : false) }, () => {
  const t = tempDir('ecryptfs-early-');
  try {
    mkdirSync(join(t.path, 'l'));
    mkdirSync(join(t.path, 'u'));
    const cases: Array<[string, RegExp]> = [
      ['ecryptfs_cipher=aes,ecryptfs_key_bytes=64', /cipher aes does not take 64-byte keys/],
      ['ecryptfs_sig=00112233445566ff', /no key with sig 00112233445566ff in the user keyring/],
      ['bogus_option', /unknown mount option "bogus_option"/],
      ['ecryptfs_bogus', /unknown eCryptfs mount option "ecryptfs_bogus"/],
      ['key=passphrase:passphrase_passwd_fd=9', /passphrase_passwd_fd=9: cannot read that descriptor/],
    ];
    for (const [opts, why] of cases) {
      const r = spawnSync('python3', [DRIVER, JSON.stringify([['Passphrase: ', 'never-typed']]), '--', process.execPath, '--openssl-legacy-provider', CLI, 'mount', join(t.path, 'l'), join(t.path, 'u'), '-o', opts], { encoding: 'utf8' });
      const out = (r.stdout ?? '').replace(/\r\n/g, '\n');
      assert.notEqual(r.status, 0, opts);
      assert.match(out, why, opts);
      assert.doesNotMatch(out, /Passphrase: |Select cipher|Selection/, `${opts}: refused before any question`);
    }
  } finally {
    t.cleanup();
  }
});

test('~/.ecryptfsrc (of the user\'s passwd home) gives mount.ecryptfs its defaults; the command line wins', { skip: skip || (sh('command -v fusermount3').code !== 0 ? 'needs fusermount3 (fuse3)' : false) }, async () => {
  // An ordinary user's: root's ~/.ecryptfsrc would change every other test's mounts meanwhile.
  openDevFuse();
  const USER = 'etopt5';
  const { home } = freshUser(USER);
  const pass = unique('rc-pass');
  const sig = deriveKey(pass, DEFAULT_SALT).sig;
  const mountsLine = (out: string) => out.split('\n').find((l) => l.includes(` on ${home}/u `)) ?? out;
  try {
    const prep = runAs(USER, `mkdir ~/l ~/u && printf 'passphrase_passwd=${pass}\\n' > ~/pw && printf '# defaults\\nkey=passphrase:passphrase_passwd_file=${home}/pw\\necryptfs_cipher=aes\\necryptfs_key_bytes=32\\necryptfs_passthrough=n\\necryptfs_enable_filename_crypto=n\\n' > ~/.ecryptfsrc`);
    assert.equal(prep.code, 0, prep.out);
    // $HOME elsewhere changes nothing: the rc file is found through the passwd entry.
    const r = runAs(USER, `HOME=/nonexistent ${node} ${join(BIN, 'mount.ecryptfs.js')} ${home}/l ${home}/u -o no_sig_cache </dev/null && ${node} ${CLI} mounts`);
    assert.equal(r.code, 0, r.out);
    assert.match(mountsLine(r.out), new RegExp(`\\(rw,ecryptfs_sig=${sig},ecryptfs_cipher=aes,ecryptfs_key_bytes=32`));
    assert.equal(runAs(USER, 'fusermount3 -u ~/u').code, 0);
    await waitUnmounted(`${home}/u`);
    const o = runAs(USER, `${node} ${join(BIN, 'mount.ecryptfs.js')} ${home}/l ${home}/u -o no_sig_cache,ecryptfs_key_bytes=16 </dev/null && ${node} ${CLI} mounts`);
    assert.equal(o.code, 0, o.out);
    assert.match(mountsLine(o.out), new RegExp(`\\(rw,ecryptfs_sig=${sig},ecryptfs_cipher=aes,ecryptfs_key_bytes=16`));
  } finally {
    sh(`fusermount3 -uz ${home}/u 2>/dev/null; umount -l ${home}/u 2>/dev/null; pkill -9 -u ${USER}; userdel -r ${USER} 2>/dev/null`);
  }
});
