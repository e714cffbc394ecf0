/**
 * Mount records of a user whose XDG_RUNTIME_DIR is unset (su, cron) used to live in
 * /tmp/ecryptfs-ts-UID, a name any user can make first (issue #12, item 6). Another user
 * pre-creates it with a symlink planted under the record's name and a record of their own:
 * the victim's mount must not write through the link, and the victim's umount must not act on
 * the planted record (it named a key of the victim's to unlink).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync, chmodSync, lstatSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mountSkipReason, openDevFuse, sh, freshUser } from '../mount/harness.js';

const CLI = fileURLToPath(new URL('../../../bin/ecryptfs.js', import.meta.url));
const VICTIM = 'etroot6v';
const ATTACKER = 'etroot6a';
const skip = mountSkipReason() || (sh('command -v fusermount3 && command -v keyctl').code !== 0 ? 'needs fusermount3 (fuse3) and keyctl (keyutils)' : false);

/** As `user`, with no XDG_RUNTIME_DIR unless given (as under su or cron). */
function as(user: string, cmd: string, env: Record<string, string> = {}): { code: number; out: string } {
  const home = sh(`getent passwd ${user} | cut -d: -f6`).out.trim();
  const r = spawnSync('setpriv', ['--reuid', user, '--regid', user, '--init-groups', 'sh', '-c', `cd /tmp && ${cmd}`], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: home, USER: user, LOGNAME: user, ...env } });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}
const recordName = (upper: string) => `${Buffer.from(upper).toString('base64url')}.json`;

test('mount records: a /tmp/ecryptfs-ts-UID made by another user is refused, neither written through nor trusted', { skip }, () => {
  openDevFuse();
  const v = freshUser(VICTIM);
  const a = freshUser(ATTACKER);
  const planted = `/tmp/ecryptfs-ts-${v.uid}`;
  const xdg = `/tmp/etroot6-xdg-${v.uid}`;
  const base = join(v.home, 'vol');
  const mount = (upper: string, env: Record<string, string> = {}) =>
    as(VICTIM, `node --openssl-legacy-provider ${CLI} mount ${base}/l-${upper} ${base}/${upper} -o key=passphrase:passphrase_passwd_file=${base}/pw,ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n,no_sig_cache`, env);
  try {
    sh(`rm -rf ${planted} ${xdg}`);
    // The victim: two volumes, a file the attacker wants to overwrite, and a key it must keep.
    const prep = as(VICTIM, `mkdir -p ${base}/l-u1 ${base}/u1 ${base}/l-u2 ${base}/u2 && echo passphrase_passwd=state-test-pw > ${base}/pw && chmod 600 ${base}/pw && echo precious > ${v.home}/precious && keyctl add user 0123456789abcdef keep-me @u`);
    assert.equal(prep.code, 0, prep.out);
    mkdirSync(xdg, { mode: 0o700 });
    chownSync(xdg, v.uid, v.uid);

    // The attacker gets there first: a world-writable directory with a link and a record.
    as(ATTACKER, `mkdir -p ${planted}/ecryptfs-ts && chmod 777 ${planted} ${planted}/ecryptfs-ts`);
    symlinkSync(join(v.home, 'precious'), join(planted, 'ecryptfs-ts', recordName(join(base, 'u1'))));
    writeFileSync(join(planted, 'ecryptfs-ts', recordName(join(base, 'u2'))), JSON.stringify({ lower: `${base}/l-u2`, upper: `${base}/u2`, pid: 1, options: '', sigs: ['0123456789abcdef'], unlinkSigs: true }));
    chmodSync(join(planted, 'ecryptfs-ts', recordName(join(base, 'u2'))), 0o666);
    sh(`chown -h ${ATTACKER}: ${planted}/ecryptfs-ts/*`);

    // The victim's mount, as from cron: refused, with what is wrong and how to fix it.
    const m1 = mount('u1');
    assert.notEqual(m1.code, 0, `the mount went ahead: ${m1.out}`);
    assert.match(m1.out, new RegExp(`${planted}.*owned by uid ${a.uid}[\\s\\S]*(remove|XDG_RUNTIME_DIR)`, 'i'));
    assert.equal(readFileSync(join(v.home, 'precious'), 'utf8'), 'precious\n', 'the file behind the planted link is untouched');
    assert.ok(lstatSync(join(planted, 'ecryptfs-ts', recordName(join(base, 'u1')))).isSymbolicLink());

    // Mounted from a session (a private XDG_RUNTIME_DIR), unmounted from cron: the planted
    // record is not what umount acts on, so the victim's other key stays.
    const m2 = mount('u2', { XDG_RUNTIME_DIR: xdg });
    assert.equal(m2.code, 0, m2.out);
    as(VICTIM, `node --openssl-legacy-provider ${CLI} umount ${base}/u2`);
    assert.match(as(VICTIM, 'keyctl search @u user 0123456789abcdef').out, /^\d+/, 'the key the planted record named is still there');

    // Once root has removed the directory, the victim's own (0700, checked) one works.
    sh(`rm -rf ${planted}`);
    const m3 = mount('u1');
    assert.equal(m3.code, 0, m3.out);
    const st = lstatSync(planted);
    assert.ok(st.isDirectory() && st.uid === v.uid && (st.mode & 0o777) === 0o700, 'made 0700 by the victim');
    assert.equal(as(VICTIM, `node --openssl-legacy-provider ${CLI} umount ${base}/u1`).code, 0);
  } finally {
    for (const u of ['u1', 'u2']) sh(`fusermount3 -uz ${base}/${u} 2>/dev/null; umount -l ${base}/${u} 2>/dev/null`);
    sh(`pkill -9 -u ${VICTIM}; pkill -9 -u ${ATTACKER}; rm -rf ${planted} ${xdg}; userdel -r ${VICTIM}; userdel -r ${ATTACKER}`);
    assert.ok(!existsSync(planted));
  }
});
