/**
 * ecryptfs-setup-private -u USER run by root, where USER has pointed ~/.ecryptfs, ~/.Private or
 * ~/Private at a directory root owns (a temp directory stands in for /etc/cron.daily), or keeps
 * rewriting Private.mnt to name one (issue #12, item 2): refused with what is wrong and how to
 * fix it, nothing created, chmodded or mounted there, and a clean setup still works, with every
 * file the user's.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mountSkipReason, openDevFuse, sh, freshUser } from '../mount/harness.js';

const BIN = fileURLToPath(new URL('../../../bin/', import.meta.url));
const USER = 'etroot2';
const CRON = '/tmp/etroot2-cron.daily';
const skip = mountSkipReason() || (sh('command -v fusermount3 && command -v keyctl').code !== 0 ? 'needs fusermount3 (fuse3) and keyctl (keyutils)' : false);

const setup = (home: string) =>
  spawnSync(process.execPath, ['--openssl-legacy-provider', join(BIN, 'ecryptfs-setup-private.js'), '-u', USER, '--loginpass-file', `${home}.lp`, '--mountpass-file', `${home}.mp`], { encoding: 'utf8', input: '', env: { ...process.env, SUDO_USER: '' } });
const out = (r: { stdout: string; stderr: string }) => `${r.stdout}${r.stderr}`;

/** The root-owned directory is as it was: mode, owner, no entries, not mounted over. */
function cronUntouched(): void {
  const st = statSync(CRON);
  assert.equal(st.mode & 0o7777, 0o755, 'mode of the root-owned directory kept');
  assert.equal(st.uid, 0);
  assert.deepEqual(readdirSync(CRON), [], 'nothing created in the root-owned directory');
  assert.doesNotMatch(readFileSync('/proc/mounts', 'utf8'), new RegExp(` ${CRON} `), 'nothing mounted on it');
}

test('setup-private -u as root: links and a rewritten Private.mnt pointing at root-owned directories are refused', { skip }, async () => {
  openDevFuse();
  const { home, uid, gid } = freshUser(USER, 'etroot2-login');
  const asUser = (cmd: string) => sh(`setpriv --reuid=${uid} --regid=${gid} --init-groups sh -c '${cmd}'`);
  try {
    rmSync(CRON, { recursive: true, force: true });
    mkdirSync(CRON, { mode: 0o755 });
    writeFileSync(`${home}.lp`, 'etroot2-login\n', { mode: 0o600 });
    writeFileSync(`${home}.mp`, 'etroot2-mount-passphrase-0123456\n', { mode: 0o600 });

    for (const name of ['.ecryptfs', '.Private', 'Private']) {
      asUser(`ln -s ${CRON} ${home}/${name}`);
      const r = setup(home);
      assert.notEqual(r.status, 0, `${name} as a link was accepted: ${out(r)}`);
      assert.match(out(r), new RegExp(`${home}/${name} is a symbolic link \\(to ${CRON}\\)[\\s\\S]*mv ${home}/${name}`));
      cronUntouched();
      asUser(`rm ${home}/${name}; rm -rf ${home}/.ecryptfs ${home}/.Private ${home}/Private`);
    }
    // A directory of root's in the home (not the user's to have set up) is refused as well.
    mkdirSync(join(home, '.ecryptfs'));
    const notTheirs = setup(home);
    assert.notEqual(notTheirs.status, 0);
    assert.match(out(notTheirs), /owned by uid 0, not by etroot2/);
    rmSync(join(home, '.ecryptfs'), { recursive: true });

    // The user keeps pointing Private.mnt at the root-owned directory while root sets up:
    // whatever the mount step reads, it is the user's mount (fusermount3 checks the user may
    // write there), never root's chmod and mount.
    mkdirSync(join(home, '.ecryptfs'), { mode: 0o700 });
    chownSync(join(home, '.ecryptfs'), uid, gid);
    const flipper = spawn('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', 'sh', '-c', `while :; do echo ${CRON} > ${home}/.ecryptfs/.m; mv -f ${home}/.ecryptfs/.m ${home}/.ecryptfs/Private.mnt 2>/dev/null; done`], { stdio: 'ignore' });
    try {
      setup(home);
    } finally {
      flipper.kill('SIGKILL');
      await new Promise((r) => flipper.once('exit', r));
    }
    cronUntouched();
    sh(`fusermount3 -uz ${home}/Private 2>/dev/null; rm -f /dev/shm/ecryptfs-${USER}-Private`);
    sh(`setpriv --reuid=${uid} --regid=${gid} --clear-groups keyctl clear @u`);
    asUser(`chmod -R u+w ${home}/Private 2>/dev/null; rm -rf ${home}/.ecryptfs ${home}/.Private ${home}/Private`);

    // Without interference: set up, tested, every file the user's (made with the user's rights).
    const ok = setup(home);
    assert.equal(ok.status, 0, out(ok));
    assert.match(out(ok), /Done configuring\.[\s\S]*Testing succeeded\./);
    for (const f of ['.ecryptfs', '.ecryptfs/Private.sig', '.ecryptfs/Private.mnt', '.ecryptfs/wrapped-passphrase', '.ecryptfs/auto-mount', '.Private', 'Private']) {
      assert.equal(statSync(join(home, f)).uid, uid, `${f} is the user's`);
    }
    assert.equal(readFileSync(join(home, '.ecryptfs/Private.mnt'), 'utf8'), `${home}/Private\n`);
    const counter = statSync(`/dev/shm/ecryptfs-${USER}-Private`, { throwIfNoEntry: false });
    if (counter) assert.equal(counter.uid, uid, 'the session counter the self-test used is the user\'s');
    cronUntouched();
  } finally {
    sh(`fusermount3 -uz ${home}/Private 2>/dev/null; umount -l ${home}/Private 2>/dev/null; umount -l ${CRON} 2>/dev/null; rm -f /dev/shm/ecryptfs-${USER}-Private ${home}.lp ${home}.mp; pkill -9 -u ${USER}; userdel -r ${USER}`);
    rmSync(CRON, { recursive: true, force: true });
  }
});
