/** End-to-end: a real FUSE mount through `ecryptfs mount`, exercised like a local filesystem. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, constants as C, existsSync, readFileSync, openSync, writeSync, closeSync, fsyncSync } from 'node:fs';
import { mountDevAt } from '../../src/sys/mounts.js';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { isMounted, mountSkipReason, mountVolume, sh, ensureUser, openDevFuse } from './harness.js';
import { ecryptfs } from '../cli/run.js';
import { manifest, unpackLower } from '../helpers/fixtures.js';

const skip = mountSkipReason();
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function decryptOffline(lower: string, passphrase: string, out: string): Promise<void> {
  const pf = join(out + '-pw');
  await fsp.writeFile(pf, passphrase + '\n', { mode: 0o600 });
  const r = await ecryptfs(['decrypt', lower, '-o', out, '--passphrase-file', pf]);
  assert.equal(r.code, 0, r.stderr);
}

test('a mounted volume behaves like a local filesystem and its lower dir decrypts offline', { skip }, async () => {
  const m = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y');
  try {
    const u = (p: string) => join(m.upper, p);
    assert.match(readFileSync('/proc/mounts', 'utf8'), new RegExp(`${m.lower} ${m.upper} fuse\\.ecryptfs rw`));
    const bdi = `/sys/class/bdi/${mountDevAt(m.upper)}/read_ahead_kb`;
    if (process.getuid?.() === 0 && existsSync(bdi) && !readFileSync('/proc/mounts', 'utf8').includes(' /sys sysfs ro')) {
      // Root raises this mount's readahead (its device found in mountinfo, not by a stat of the path), just after the report.
      for (let i = 0; i < 50 && readFileSync(bdi, 'utf8').trim() !== '4096'; i++) await new Promise((r) => setTimeout(r, 50));
      assert.equal(readFileSync(bdi, 'utf8').trim(), '4096');
    }
    // create / read / write at offsets / append / O_EXCL
    await fsp.writeFile(u('a.txt'), 'hello\n');
    assert.equal(await fsp.readFile(u('a.txt'), 'utf8'), 'hello\n');
    const fd = openSync(u('a.txt'), 'r+');
    writeSync(fd, Buffer.from('J'), 0, 1, 0);
    writeSync(fd, Buffer.from('XY'), 0, 2, 10000);
    closeSync(fd);
    const a = await fsp.readFile(u('a.txt'));
    assert.equal(a.length, 10002);
    assert.equal(a.subarray(0, 6).toString(), 'Jello\n');
    assert.ok(a.subarray(6, 10000).equals(Buffer.alloc(9994)), 'hole reads as zeros');
    await fsp.appendFile(u('a.txt'), 'Z');
    assert.equal((await fsp.stat(u('a.txt'))).size, 10003);
    await assert.rejects(fsp.open(u('a.txt'), C.O_CREAT | C.O_EXCL | C.O_WRONLY), { code: 'EEXIST' });
    // O_TRUNC, truncate up and down
    await fsp.writeFile(u('t'), Buffer.alloc(20000, 1));
    await fsp.truncate(u('t'), 5000);
    assert.equal((await fsp.stat(u('t'))).size, 5000);
    await fsp.truncate(u('t'), 9000);
    const t = await fsp.readFile(u('t'));
    assert.ok(t.subarray(0, 5000).equals(Buffer.alloc(5000, 1)) && t.subarray(5000).equals(Buffer.alloc(4000)));
    const tr = await fsp.open(u('t'), C.O_WRONLY | C.O_TRUNC);
    await tr.close();
    assert.equal((await fsp.stat(u('t'))).size, 0);
    // big file
    const big = randomBytes(5 * 1024 * 1024 + 123);
    await fsp.writeFile(u('big'), big);
    assert.equal(sha(await fsp.readFile(u('big'))), sha(big));
    // dirs, rename over existing and across dirs, ENOTEMPTY, ENOENT
    await fsp.mkdir(u('d1/d2'), { recursive: true });
    await fsp.writeFile(u('d1/d2/f'), 'f');
    await fsp.writeFile(u('other'), 'o');
    await fsp.rename(u('other'), u('d1/d2/f'));
    assert.equal(await fsp.readFile(u('d1/d2/f'), 'utf8'), 'o');
    await fsp.rename(u('d1/d2/f'), u('moved'));
    await assert.rejects(fsp.rmdir(u('d1')), { code: 'ENOTEMPTY' });
    await assert.rejects(fsp.readFile(u('nope')), { code: 'ENOENT' });
    assert.deepEqual((await fsp.readdir(u(''))).sort(), ['a.txt', 'big', 'd1', 'moved', 't']);
    // unlink an open file
    const h = await fsp.open(u('moved'), 'r+');
    await fsp.unlink(u('moved'));
    await h.write(Buffer.from('still here'), 0, 10, 0);
    assert.equal((await h.read(Buffer.alloc(10), 0, 10, 0)).buffer.toString(), 'still here');
    await h.close();
    // symlinks, hard links, chmod, chown, utimes, xattrs, statfs, fsync, flock
    await fsp.symlink('a.txt', u('ln'));
    assert.equal(await fsp.readlink(u('ln')), 'a.txt');
    assert.equal((await fsp.lstat(u('ln'))).size, 5);
    await fsp.link(u('a.txt'), u('hard'));
    assert.equal((await fsp.stat(u('a.txt'))).nlink, 2);
    await fsp.chmod(u('a.txt'), 0o600);
    assert.equal((await fsp.stat(u('a.txt'))).mode & 0o777, 0o600);
    await fsp.chown(u('a.txt'), 1234, 5678);
    assert.equal((await fsp.stat(u('a.txt'))).uid, 1234);
    await fsp.utimes(u('a.txt'), new Date(1e12), new Date(1.5e12));
    assert.equal((await fsp.stat(u('a.txt'))).mtimeMs, 1.5e12);
    assert.equal(sh(`setfattr -n user.color -v blue ${u('a.txt')} && getfattr --absolute-names --only-values -n user.color ${u('a.txt')}`).out, 'blue');
    const st = sh(`stat -f -c '%l' ${m.upper}`);
    assert.equal(st.out.trim(), '143');
    const fsyncFd = openSync(u('big'), 'r+');
    fsyncSync(fsyncFd);
    closeSync(fsyncFd);
    assert.equal(sh(`flock -n ${u('big')} true`).code, 0);
    // name length: 143 ok, 144 ENAMETOOLONG
    await fsp.writeFile(u('n'.repeat(143)), 'x');
    await assert.rejects(fsp.writeFile(u('n'.repeat(144)), 'x'), { code: 'ENAMETOOLONG' });
    // EACCES for another user with default permissions
    ensureUser('ecryptfs-test-user');
    await fsp.writeFile(u('secret'), 'top');
    await fsp.chmod(u('secret'), 0o600);
    const other = sh(`cat ${u('secret')}`, 'ecryptfs-test-user');
    assert.notEqual(other.code, 0);
    assert.match(other.out, /Permission denied/);
    // Several processes at once on one file.
    const procs = await Promise.all(
      [0, 1, 2, 3].map((i) => Promise.resolve(sh(`dd if=/dev/zero bs=4096 count=64 2>/dev/null | tr '\\0' '${i}' | dd of=${u('shared')} bs=4096 seek=${i * 64} conv=notrunc 2>/dev/null`))),
    );
    assert.ok(procs.every((p) => p.code === 0));
    const shared = await fsp.readFile(u('shared'));
    assert.equal(shared.length, 4 * 64 * 4096);
    for (let i = 0; i < 4; i++) assert.ok(shared.subarray(i * 262144, (i + 1) * 262144).equals(Buffer.alloc(262144, String(i))));
    // The lower holds only encrypted names and files of the kernel's layout.
    const lowerNames = await fsp.readdir(m.lower);
    assert.ok(lowerNames.every((n) => n.startsWith('ECRYPTFS_FNEK_ENCRYPTED.')));
    assert.ok(!readFileSync(join(m.lower, lowerNames[0]), { flag: 'r' }).includes(Buffer.from('Jello')));
    const expectA = await fsp.readFile(u('a.txt'));
    await m.umount();
    assert.ok(!isMounted(m.upper));
    const out = join(m.root, 'offline');
    await decryptOffline(m.lower, 'mount-test-passphrase', out);
    assert.deepEqual(await fsp.readFile(join(out, 'a.txt')), expectA);
    assert.equal(sha(await fsp.readFile(join(out, 'big'))), sha(big));
    assert.equal(await fsp.readlink(join(out, 'ln')), 'a.txt');
  } finally {
    await m.cleanup();
  }
});

test('a kernel-made lower directory mounts and reads byte-exact (every cipher in the corpus)', { skip }, async () => {
  for (const c of ['aes256-fnek', 'blowfish-448', 'des3_ede-192', 'cast5-128', 'aes128-fnek-addpassphrase']) {
    const man = manifest(c);
    const lower = await unpackLower(c);
    const fnek = man.sigs.ecryptfs_fnek_sig && man.sigs.ecryptfs_fnek_sig !== man.sigs.ecryptfs_sig ? `,ecryptfs_fnek_sig=${man.sigs.ecryptfs_fnek_sig}` : man.filename_encryption ? ',ecryptfs_enable_filename_crypto=y' : ',ecryptfs_enable_filename_crypto=n';
    const m = await mountVolume(`ecryptfs_cipher=${man.cipher},ecryptfs_key_bytes=${man.key_bytes},ecryptfs_passthrough=n${fnek}`, { lower: lower.path, passphrase: man.passphrase });
    try {
      for (const f of man.files) {
        const p = join(m.upper, f.path);
        if (f.type === 'file' && f.sha256) assert.equal(sha(await fsp.readFile(p)), f.sha256, `${c}: ${f.path}`);
        if (f.type === 'symlink') assert.equal(await fsp.readlink(p), f.symlink_target);
      }
    } finally {
      await m.cleanup();
      lower.cleanup();
    }
  }
});

test('a lower file that is not eCryptfs lists but reads with EIO; passthrough reads it plain', { skip }, async () => {
  const man = manifest('aes128-nonecryptfs-file');
  for (const pt of ['n', 'y']) {
    const lower = await unpackLower('aes128-nonecryptfs-file');
    const m = await mountVolume(`ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=${pt},ecryptfs_enable_filename_crypto=n`, { lower: lower.path, passphrase: man.passphrase });
    try {
      assert.ok((await fsp.readdir(m.upper)).includes('plain.txt'));
      if (pt === 'n') await assert.rejects(fsp.readFile(join(m.upper, 'plain.txt')), { code: 'EIO' });
      else assert.deepEqual(await fsp.readFile(join(m.upper, 'plain.txt')), readFileSync(join(lower.path, 'plain.txt')));
      assert.equal(await fsp.readFile(join(m.upper, 'good.txt'), 'utf8'), 'good file\n');
    } finally {
      await m.cleanup();
      lower.cleanup();
    }
  }
});

test('an ordinary user mounts through fusermount3 and unmounts', { skip: skip || (sh('command -v fusermount3').code !== 0 ? 'fusermount3 (Debian fuse3) is not installed' : false) }, async () => {
  openDevFuse();
  ensureUser('ecryptfs-test-user');
  const home = sh('getent passwd ecryptfs-test-user | cut -d: -f6').out.trim();
  const base = join(home, `mnt-${process.pid}`);
  sh(`rm -rf ${base}; mkdir -p ${base}/l ${base}/u && printf 'passphrase_passwd=user-pass\\n' > ${base}/pw && chown -R ecryptfs-test-user ${base}`);
  const cli = join(process.cwd(), 'dist/src/cli/main.js');
  try {
    const r = sh(`cd /tmp && node --openssl-legacy-provider ${cli} mount ${base}/l ${base}/u -o key=passphrase:passphrase_passwd_file=${base}/pw,ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y,no_sig_cache && echo data > ${base}/u/f && cat ${base}/u/f && grep ' ${base}/u ' /proc/mounts`, 'ecryptfs-test-user');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /Mounted eCryptfs\ndata\n/);
    assert.match(r.out, /fuse\.ecryptfs rw,nosuid,nodev,.*user_id=\d+/);
    const u = sh(`node --openssl-legacy-provider ${cli} umount ${base}/u`, 'ecryptfs-test-user');
    assert.equal(u.code, 0, u.out);
    assert.ok(!isMounted(`${base}/u`));
    assert.equal(sh(`ls ${base}/l | grep -c ECRYPTFS_FNEK_ENCRYPTED`).out.trim(), '1');
  } finally {
    sh(`fusermount3 -uz ${base}/u 2>/dev/null; umount -l ${base}/u 2>/dev/null; rm -rf ${base}`);
  }
});

test('SIGTERM to the daemon unmounts cleanly; a killed daemon is cleared by umount -l', { skip }, async () => {
  const m = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n');
  try {
    await fsp.writeFile(join(m.upper, 'f'), 'x');
    const { listMountStates } = await import('../../src/mount/state.js');
    const pid = (await listMountStates()).find((s) => s.upper === m.upper)?.pid ?? 0;
    assert.ok(pid > 0);
    process.kill(pid, 'SIGTERM');
    for (let i = 0; i < 50 && isMounted(m.upper); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(!isMounted(m.upper), 'unmounted after SIGTERM');
  } finally {
    await m.cleanup();
  }
});

test('ecryptfs_sig without key= takes the keys from the kernel keyring; ecryptfs_unlink_sigs removes them at umount', { skip: skip || (sh('keyctl show @u').code !== 0 ? 'no kernel keyring (keyctl)' : false) }, async () => {
  const { tool } = await import('../cli/run.js');
  const add = await tool('ecryptfs-add-passphrase', ['--fnek', '-'], 'keyring-mount-pass');
  assert.equal(add.code, 0, add.stderr);
  const [sig, fnek] = [...add.stdout.matchAll(/sig \[([0-9a-f]{16})\]/g)].map((x) => x[1]);
  const m = await mountVolume(`ecryptfs_sig=${sig},ecryptfs_fnek_sig=${fnek},ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_unlink_sigs`);
  try {
    await fsp.writeFile(join(m.upper, 'from-keyring'), 'k');
    assert.ok((await fsp.readdir(m.lower))[0].startsWith('ECRYPTFS_FNEK_ENCRYPTED.'));
    await m.umount();
    assert.notEqual(sh(`keyctl search @u user ${sig}`).code, 0, 'file key unlinked');
    assert.notEqual(sh(`keyctl search @u user ${fnek}`).code, 0, 'FNEK unlinked');
  } finally {
    sh(`for s in ${sig} ${fnek}; do id=$(keyctl search @u user $s 2>/dev/null) && keyctl unlink $id @u; done`);
    await m.cleanup();
  }
});
