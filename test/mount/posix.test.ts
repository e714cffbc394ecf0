/**
 * POSIX details the kernel module gets right, through a root mount used by a real user
 * (issue #13): the caller's umask is the only one applied, times keep nanoseconds, POSIX ACLs are
 * kept and enforced, file capabilities are kept (and dropped by a write, as the kernel does),
 * and FIFOs, sockets and device nodes are lower inodes of their own type with encrypted names.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { freshUser, mountSkipReason, mountVolume, runAs, sh, type TestMount } from './harness.js';

const skip = mountSkipReason();
const USER = 'etposix1';
const OTHER = 'etposix2';
const OPTS = 'ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y';
let m: TestMount;
let uid = 0;
let gid = 0;

before(async () => {
  if (skip) return;
  ({ uid, gid } = freshUser(USER));
  freshUser(OTHER);
  m = await mountVolume(OPTS);
  // The user's own lower directory, as with ~/.Private; the mount's parent lets users through.
  chownSync(m.lower, uid, gid);
  chmodSync(m.root, 0o755);
  sh(`chown ${USER}: ${m.upper}`);
});

after(async () => {
  if (skip) return;
  await m?.cleanup();
  sh(`pkill -9 -u ${USER}; pkill -9 -u ${OTHER}; userdel -r ${USER}; userdel -r ${OTHER}`);
});

const mode = (p: string) => statSync(p).mode & 0o7777;
const lmode = (p: string) => lstatSync(p).mode & 0o7777;

/** The one lower entry whose clear name is `name`, found through ecryptfs-find-like inode match. */
function lowerOf(upperPath: string, lowerDir: string): string {
  const ino = lstatSync(upperPath).ino;
  const hit = readdirSync(lowerDir).find((n) => lstatSync(join(lowerDir, n)).ino === ino);
  assert.ok(hit, `no lower entry for ${upperPath}`);
  assert.match(hit, /^ECRYPTFS_FNEK_ENCRYPTED\./);
  return join(lowerDir, hit);
}

for (const umask of [0o000, 0o002, 0o077]) {
  test(`umask ${umask.toString(8).padStart(3, '0')} is the only one applied (files, directories, FIFOs)`, { skip }, () => {
    const d = join(m.upper, `u${umask}`);
    const r = runAs(USER, `umask ${umask.toString(8)} && mkdir ${d} && touch ${d}/f && mkdir ${d}/d && mkfifo ${d}/p`);
    assert.equal(r.code, 0, r.out);
    assert.equal(mode(`${d}/f`), 0o666 & ~umask);
    assert.equal(mode(`${d}/d`), 0o777 & ~umask);
    assert.equal(mode(`${d}/p`), 0o666 & ~umask);
    assert.equal(lmode(lowerOf(`${d}/f`, lowerOf(d, m.lower))), 0o666 & ~umask);
  });
}

test('umask(0) and mode 04777 / 0777 give exactly those modes; another user may then write', { skip }, () => {
  const f = join(m.upper, 'shared-suid');
  const d = join(m.upper, 'shared-dir');
  const r = runAs(USER, `python3 -c "import os; os.umask(0); os.close(os.open('${f}', os.O_CREAT | os.O_WRONLY, 0o4777)); os.mkdir('${d}', 0o777)"`);
  assert.equal(r.code, 0, r.out);
  assert.equal(mode(f), 0o4777);
  assert.equal(mode(d), 0o777);
  const w = runAs(OTHER, `echo other > ${d}/from-other && cat ${d}/from-other`);
  assert.equal(w.code, 0, w.out);
  assert.match(w.out, /other/);
});

test('times keep nanoseconds: touch -d and utimensat with 100,000,000 ns', { skip }, () => {
  const f = join(m.upper, 'times');
  let r = runAs(USER, `touch -d '2021-01-02 03:04:05.123456789 UTC' ${f} && stat -c '%y' ${f}`);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /05\.123456789/);
  r = runAs(USER, `python3 -c "import os; os.utime('${f}', ns=(1700000000100000000, 1700000001100000000)); s = os.stat('${f}'); print(s.st_atime_ns, s.st_mtime_ns)"`);
  assert.equal(r.code, 0, r.out);
  assert.equal(r.out.trim(), '1700000000100000000 1700000001100000000');
  const st = statSync(lowerOf(f, m.lower), { bigint: true });
  assert.equal(st.mtimeNs, 1700000001100000000n, 'the lower file has the same nanoseconds');
});

test('POSIX ACLs: setfacl/getfacl, an ACL denying a user, a default ACL inherited', { skip }, () => {
  const f = join(m.upper, 'acl-file');
  let r = runAs(USER, `echo secret > ${f} && chmod 644 ${f} && setfacl -m u:${OTHER}:--- ${f} && getfacl -c ${f}`);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, new RegExp(`user:${OTHER}:---`));
  r = runAs(OTHER, `cat ${f}`);
  assert.notEqual(r.code, 0, 'the ACL denies the other user');
  assert.match(r.out, /Permission denied/);
  r = runAs(USER, `cat ${f}`);
  assert.equal(r.code, 0, r.out);
  // Kept on the lower file, where the kernel module keeps it.
  assert.match(sh(`getfacl -c ${lowerOf(f, m.lower)}`).out, new RegExp(`user:${OTHER}:---`));
  const d = join(m.upper, 'acl-dir');
  r = runAs(USER, `mkdir ${d} && setfacl -d -m u:${OTHER}:rwx ${d} && umask 077 && touch ${d}/inherits && getfacl -c ${d}/inherits`);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, new RegExp(`user:${OTHER}:rwx`), 'the default ACL is inherited (and replaces the umask)');
  r = runAs(OTHER, `echo ok >> ${d}/inherits`);
  assert.equal(r.code, 0, r.out);
});

test('file capabilities: setcap/getcap kept on the lower file; a write drops them as the kernel does', { skip }, () => {
  const f = join(m.upper, 'capfile');
  sh(`printf x > ${f}`);
  let r = sh(`setcap cap_net_raw+ep ${f} && getcap ${f}`);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /cap_net_raw[=+]ep/);
  assert.match(sh(`getfattr -n security.capability -e hex ${lowerOf(f, m.lower)}`).out, /security\.capability=0x/);
  r = sh(`getcap ${f}`);
  assert.match(r.out, /cap_net_raw/, 'read again (from the per-inode cache)');
  sh(`printf y >> ${f}`);
  assert.doesNotMatch(sh(`getcap ${f}`).out, /cap_net_raw/);
  assert.doesNotMatch(sh(`getfattr -n security.capability ${lowerOf(f, m.lower)} 2>&1`).out, /security\.capability=/);
  r = runAs(USER, `setcap cap_net_raw+ep ${m.upper}/times`);
  assert.notEqual(r.code, 0, 'an ordinary user cannot set file capabilities');
});

test('FIFOs, sockets and device nodes: lower inodes of the same type, encrypted names, no header', { skip }, () => {
  const d = join(m.upper, 'special');
  let r = runAs(USER, `mkdir ${d} && mkfifo ${d}/fifo && python3 -c "import socket; s = socket.socket(socket.AF_UNIX); s.bind('${d}/sock')"`);
  assert.equal(r.code, 0, r.out);
  r = sh(`mknod ${d}/chr c 1 3 && mknod ${d}/blk b 7 200`);
  assert.equal(r.code, 0, r.out);
  r = runAs(USER, `mknod ${d}/mine c 1 3`);
  assert.notEqual(r.code, 0, 'an ordinary user cannot make a device node');
  assert.deepEqual(readdirSync(d).sort(), ['blk', 'chr', 'fifo', 'sock']);
  const ld = lowerOf(d, m.lower);
  const types: Record<string, string> = {};
  for (const n of ['fifo', 'sock', 'chr', 'blk']) {
    const st = lstatSync(lowerOf(join(d, n), ld));
    types[n] = st.isFIFO() ? 'p' : st.isSocket() ? 's' : st.isCharacterDevice() ? `c${st.rdev}` : st.isBlockDevice() ? `b${st.rdev}` : '?';
    assert.equal(st.size, 0, `${n}: no header`);
  }
  assert.deepEqual(types, { fifo: 'p', sock: 's', chr: `c${(1 << 8) | 3}`, blk: `b${(7 << 8) | 200}` });
  // The FIFO works through the mount (the kernel serves it; the daemon is not in the data path).
  r = runAs(USER, `(echo through-fifo > ${d}/fifo &) ; cat ${d}/fifo`);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /through-fifo/);
  r = runAs(USER, `rm ${d}/fifo ${d}/sock`);
  assert.equal(r.code, 0, r.out);
});
