/**
 * ecryptfs-migrate-home on a real user's home: a few hundred files with odd names, a symlink, a
 * hard link and a sparse file go through the mount into /home/.ecryptfs/USER/.Private, compare
 * equal with the backup, open for the user with the login password, and a migration cut short
 * resumes from its state file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { promises as fsp, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { verifyTree } from '../../src/home/copytree.js';
import { isMounted, mountSkipReason, openDevFuse, sh, freshUser, runAs } from '../mount/harness.js';
import { pamService } from './pam-harness.js';

const BIN = fileURLToPath(new URL('../../../bin/', import.meta.url));
const DRIVER = fileURLToPath(new URL('../../../test/helpers/pty-driver.py', import.meta.url));
const USER = 'ecryptfs-migrate-test';
const skip = mountSkipReason() || (sh('command -v fusermount3 && keyctl show @u').code !== 0 ? 'needs fusermount3 (fuse3) and keyctl (keyutils)' : false);
const node = (tool: string, args: string[], input = '') => spawnSync(process.execPath, ['--openssl-legacy-provider', join(BIN, `${tool}.js`), ...args], { input, encoding: 'utf8' });
const asUser = (cmd: string, input = '') => {
  const r = spawnSync('su', [USER, '-s', '/bin/sh', '-c', `cd /tmp && ${cmd}`], { input, encoding: 'utf8' });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
};

async function populate(home: string): Promise<void> {
  const odd = ['spa ce', 'ünïcödé-名前', "quote'\"s", 'semi;colon&amp', '-dash', '.hidden', 'x'.repeat(130), 'new\nline', 'back\\slash', 'tab\there'];
  for (let d = 0; d < 10; d++) {
    const dir = join(home, `dir ${d} ${odd[d]}`);
    await fsp.mkdir(dir);
    for (let i = 0; i < 30; i++) await fsp.writeFile(join(dir, `${odd[(i + d) % odd.length]}-${i}`), `file ${d}/${i}\n`.repeat(i * 37));
  }
  await fsp.writeFile(join(home, 'target.txt'), 'the target\n');
  await fsp.symlink('target.txt', join(home, 'link to target'));
  await fsp.symlink('/nonexistent/dangling', join(home, 'dangling'));
  await fsp.writeFile(join(home, 'hard a'), 'shared by two names\n');
  await fsp.link(join(home, 'hard a'), join(home, 'dir 0 spa ce', 'hard b'));
  const sparse = await fsp.open(join(home, 'sparse.img'), 'w');
  await sparse.write(Buffer.from('middle'), 0, 6, 3 * 1048576);
  await sparse.truncate(5 * 1048576);
  await sparse.close();
  await fsp.writeFile(join(home, 'empty'), '');
  await fsp.chmod(join(home, 'target.txt'), 0o640);
  await fsp.mkdir(join(home, 'private dir'), 0o750);
  await fsp.utimes(join(home, 'target.txt'), new Date('2001-02-03T04:05:06Z'), new Date('2002-03-04T05:06:07Z'));
}

test('migrate-home: a home with odd names, links and holes, verified and resumable', { skip, timeout: 300_000 }, async () => {
  openDevFuse();
  sh(`rm -rf /home/.ecryptfs/${USER} /home/.ecryptfs/.migrate-${USER}.json`);
  const { home } = freshUser(USER, 'migrate-login-pw');
  const pw = join('/tmp', `migrate-pw-${process.pid}`);
  let backup = '';
  let recovered = '';
  try {
    await populate(home);
    sh(`chown -R ${USER}: ${home}`);
    writeFileSync(pw, 'migrate-login-pw\n', { mode: 0o600 });

    const refused = node('ecryptfs-migrate-home', ['-u', USER, '-l', 'secret']);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /would put a secret on the command line/);

    // A name too long to encrypt stops it before anything moves.
    const long = join(home, 'y'.repeat(150));
    writeFileSync(long, '');
    const tooLong = node('ecryptfs-migrate-home', ['-u', USER, '--loginpass-file', pw]);
    assert.equal(tooLong.status, 1);
    assert.match(tooLong.stderr, /1 names are longer than 143 bytes/);
    assert.ok(!(await fsp.lstat(join(home, '.ecryptfs')).catch(() => undefined)), 'nothing was set up');
    await fsp.rm(long);

    // A process with a file open in the home (here: its working directory) stops it too.
    const busy = spawn('sleep', ['60'], { cwd: join(home, 'dir 1 ünïcödé-名前'), stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 200));
      const inUse = node('ecryptfs-migrate-home', ['-u', USER, '--loginpass-file', pw]);
      assert.equal(inUse.status, 1);
      assert.match(inUse.stderr, new RegExp(`INFO: {2}The following files are in use:\\s+sleep ${busy.pid} ${home}/dir 1 ünïcödé-名前[\\s\\S]*ERROR: {2}Cannot proceed\\.`));
      assert.ok(!(await fsp.lstat(join(home, '.ecryptfs')).catch(() => undefined)), 'nothing was set up');
    } finally {
      busy.kill('SIGKILL');
    }

    const r = node('ecryptfs-migrate-home', ['-u', USER, '--loginpass-file', pw]);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /INFO: {2}Checking disk space[\s\S]*Checking for open files[\s\S]*Encrypted home has been set up, encrypting files now/);
    backup = /you should remove (\/home\/[^\s]+)\.\n/.exec(r.stdout)?.[1] ?? '';
    assert.match(backup, new RegExp(`^/home/${USER}\\.[A-Za-z0-9]{8}$`), r.stdout);
    assert.match(r.stdout, /MUST LOGIN IMMEDIATELY, _BEFORE_THE_NEXT_REBOOT_/);
    assert.ok(!isMounted(home), 'the home is unmounted at the end');
    assert.equal(await fsp.readlink(join(home, '.ecryptfs')), `/home/.ecryptfs/${USER}/.ecryptfs`);
    assert.equal(await fsp.readlink(join(home, '.Private')), `/home/.ecryptfs/${USER}/.Private`);
    assert.equal(readFileSync(`/home/.ecryptfs/${USER}/.ecryptfs/Private.mnt`, 'utf8'), `${home}\n`);
    const lowerNames = await fsp.readdir(`/home/.ecryptfs/${USER}/.Private`);
    assert.ok(lowerNames.length > 10 && lowerNames.every((n) => n.startsWith('ECRYPTFS_FNEK_ENCRYPTED.') || n === '.ecryptfs' || n === '.Private'), lowerNames.join(' '));

    // Root reads it back (read-only, on its own mount) and compares every entry with the backup.
    const rec = node('ecryptfs-recover-private', [`/home/.ecryptfs/${USER}/.Private`], 'y\ny\nmigrate-login-pw\n');
    recovered = /Private data mounted at \[(.*)\]/.exec(rec.stdout)?.[1] ?? '';
    assert.ok(recovered, rec.stdout + rec.stderr);
    assert.deepEqual(await verifyTree(backup, recovered), []);
    sh(`umount ${recovered} && rmdir ${recovered}`);
    recovered = '';

    // The user logs in with the login password: the whole home is there.
    const m = asUser(`HOME=${home} ${process.execPath} --openssl-legacy-provider ${join(BIN, 'ecryptfs-mount-private.js')} && cat '${home}/target.txt' && stat -c %h '${home}/hard a' && HOME=${home} ${process.execPath} --openssl-legacy-provider ${join(BIN, 'ecryptfs-umount-private.js')}`, 'migrate-login-pw\n');
    assert.equal(m.code, 0, m.out);
    assert.match(m.out, /the target\n2\n/);
    assert.ok(!isMounted(home));

    // Cut short: files missing or half-written in the encrypted home, state file left behind.
    const rw = node('ecryptfs-recover-private', ['--rw', `/home/.ecryptfs/${USER}/.Private`], 'y\ny\nmigrate-login-pw\n');
    recovered = /Private data mounted at \[(.*)\]/.exec(rw.stdout)?.[1] ?? '';
    assert.ok(recovered, rw.stdout + rw.stderr);
    await fsp.rm(join(recovered, 'dir 3 semi;colon&amp'), { recursive: true });
    await fsp.rm(join(recovered, 'dir 0 spa ce', 'hard b'));
    await fsp.writeFile(join(recovered, 'sparse.img'), 'half');
    sh(`umount ${recovered} && rmdir ${recovered}`);
    recovered = '';
    writeFileSync(`/home/.ecryptfs/.migrate-${USER}.json`, JSON.stringify({ orig: backup, phase: 'copy' }), { mode: 0o600 });
    const again = node('ecryptfs-migrate-home', ['-u', USER, '--loginpass-file', pw]);
    assert.equal(again.status, 0, again.stdout + again.stderr);
    assert.match(again.stderr, /Resuming the migration/);
    const rec2 = node('ecryptfs-recover-private', [`/home/.ecryptfs/${USER}/.Private`], 'y\ny\nmigrate-login-pw\n');
    recovered = /Private data mounted at \[(.*)\]/.exec(rec2.stdout)?.[1] ?? '';
    assert.deepEqual(await verifyTree(backup, recovered), []);
  } finally {
    if (recovered) sh(`umount ${recovered} || umount -l ${recovered}; rmdir ${recovered}`);
    sh(`fusermount3 -uz ${home} 2>/dev/null; umount -l ${home} 2>/dev/null; rm -f ${pw} /dev/shm/ecryptfs-${USER}-Private /home/.ecryptfs/.migrate-${USER}.json; userdel -r ${USER} 2>/dev/null; rm -rf ${home} /home/.ecryptfs/${USER}${backup ? ` ${backup}` : ''}`);
  }
});

test("migrate-home as in the seed: no password asked, the user's first login through PAM wraps the passphrase and mounts the home", { skip: skip || (sh('command -v pamtester').code !== 0 ? 'needs pamtester' : false), timeout: 120_000 }, async () => {
  openDevFuse();
  const U = 'ecryptfs-migrate-seed';
  const SERVICE = 'ecryptfs-ts-migrate-test';
  sh(`rm -rf /home/.ecryptfs/${U} /home/.ecryptfs/.migrate-${U}.json /dev/shm/.ecryptfs-${U}`);
  const { home, uid } = freshUser(U, 'seed-login-pw');
  let backup = '';
  try {
    writeFileSync(join(home, 'notes.txt'), 'my notes\n');
    await fsp.mkdir(join(home, 'docs'));
    writeFileSync(join(home, 'docs', 'letter ü.txt'), 'dear reader\n'.repeat(1000));
    sh(`chown -R ${U}: ${home}`);
    // On a terminal, as an administrator runs it: the progress bar with its ETA shows.
    const r = spawnSync('python3', [DRIVER, '[]', '--', process.execPath, '--openssl-legacy-provider', join(BIN, 'ecryptfs-migrate-home.js'), '-u', U], { encoding: 'utf8' });
    const out = r.stdout.replace(/\r\n/g, '\n');
    assert.equal(r.status, 0, out + r.stderr);
    assert.match(out, /YOU SHOULD RECORD YOUR MOUNT PASSPHRASE[\s\S]*Done configuring\.[\s\S]*encrypting files now[\s\S]*Encrypting \[[\s\S]*ETA[\s\S]*MUST LOGIN IMMEDIATELY, _BEFORE_THE_NEXT_REBOOT_/);
    backup = /you should remove (\/home\/[^\s]+)\.\n/.exec(out)?.[1] ?? '';
    assert.ok(backup, out);
    const dot = `/home/.ecryptfs/${U}/.ecryptfs`;
    // Until the first login the mount passphrase waits in RAM (hence "before the next reboot").
    assert.ok(!existsSync(join(dot, 'wrapped-passphrase')));
    assert.equal(statSync(`/dev/shm/.ecryptfs-${U}`).uid, uid);

    writeFileSync(`/etc/pam.d/${SERVICE}`, pamService());
    const login = spawnSync('pamtester', [SERVICE, U, 'authenticate', 'open_session'], { input: 'seed-login-pw\n', encoding: 'utf8' });
    assert.equal(login.status, 0, login.stdout + login.stderr);
    assert.ok(existsSync(join(dot, 'wrapped-passphrase')), 'the first login wrapped it');
    assert.ok(!existsSync(`/dev/shm/.ecryptfs-${U}`));
    assert.ok(isMounted(home), 'and mounted the home');
    assert.equal(runAs(U, `cat ${home}/notes.txt "${home}/docs/letter ü.txt" | wc -l`).out.trim(), '1001');
    assert.equal(spawnSync('pamtester', [SERVICE, U, 'close_session'], { encoding: 'utf8' }).status, 0);
    assert.ok(!isMounted(home), 'unmounted at logout');
    const real = spawnSync('ecryptfs-unwrap-passphrase', [join(dot, 'wrapped-passphrase'), '-'], { input: 'seed-login-pw', encoding: 'utf8' });
    assert.match(real.stdout.trim(), /^[0-9a-f]{32}$/, 'the real tool unwraps what the login wrapped');
  } finally {
    rmSync(`/etc/pam.d/${SERVICE}`, { force: true });
    sh(`fusermount3 -uz ${home} 2>/dev/null; rm -f /dev/shm/ecryptfs-${U}-Private /dev/shm/.ecryptfs-${U} /home/.ecryptfs/.migrate-${U}.json; pkill -9 -u ${U}; userdel -r ${U} 2>/dev/null; rm -rf ${home} /home/.ecryptfs/${U}${backup ? ` ${backup}` : ''}`);
  }
});

test('migrate-home: not enough free space for 2.5x the home stops it before anything moves, saying how much is needed', { skip }, async () => {
  const U = 'ecryptfs-migrate-full';
  const fsDir = `/tmp/ecryptfs-small-fs-${process.pid}`;
  const home = join(fsDir, U);
  await fsp.mkdir(fsDir, { recursive: true });
  try {
    assert.equal(sh(`mount -t tmpfs -o size=8m tmpfs ${fsDir}`).code, 0);
    sh(`pkill -9 -u ${U}; userdel -r ${U} 2>/dev/null; useradd -m -d ${home} -s /bin/sh ${U}`);
    writeFileSync(join(home, 'data.bin'), Buffer.alloc(4 << 20, 7));
    const r = node('ecryptfs-migrate-home', ['-u', U], '');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /INFO: {2}2\.5x the size your current home directory is required[\s\S]*Needed: 10\.\d MiB; free on the filesystem of [^\n]+: [0-4]\.\d MiB\.[\s\S]*ERROR: {2}Not enough free disk space\./);
    assert.ok(existsSync(join(home, 'data.bin')) && !existsSync(join(home, '.ecryptfs')), 'the home is untouched');
  } finally {
    sh(`userdel ${U} 2>/dev/null; umount ${fsDir}; rmdir ${fsDir}`);
  }
});
