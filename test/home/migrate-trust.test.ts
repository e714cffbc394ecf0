/**
 * ecryptfs-migrate-home copies, as root, a backup the user can still change (issue #12, item 3).
 * A process of the user's flips hundreds of entries between a regular file and a symlink to a
 * root-only file during the copy and reads the new home as it fills: no copy may ever hold the
 * root-only bytes, and the run ends with a message, never an unhandled rejection.
 *
 * And what rsync -a keeps (issue #13): byte names (Latin-1, invalid UTF-8), FIFOs, sockets and
 * device nodes, user.* attributes and POSIX ACLs: copied and verified, or named where the
 * encrypted home cannot hold them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { promises as fsp, existsSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMounted, mountSkipReason, openDevFuse, sh, freshUser } from '../mount/harness.js';

const BIN = fileURLToPath(new URL('../../../bin/', import.meta.url));
const skip = mountSkipReason() || (sh('command -v fusermount3 && keyctl show @u && command -v python3').code !== 0 ? 'needs fusermount3 (fuse3), keyctl (keyutils) and python3' : false);
const node = (tool: string, args: string[], input = '') => spawnSync(process.execPath, ['--openssl-legacy-provider', join(BIN, `${tool}.js`), ...args], { input, encoding: 'utf8' });
const run = (tool: string, args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const p = spawn(process.execPath, ['--openssl-legacy-provider', join(BIN, `${tool}.js`), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let [stdout, stderr] = ['', ''];
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });

function cleanup(user: string, home: string): void {
  sh(`pkill -9 -u ${user}; umount ${home} 2>/dev/null || umount -l ${home} 2>/dev/null; rm -rf /home/${user}.* /home/.ecryptfs/${user} /home/.ecryptfs/.migrate-${user}.json /dev/shm/.ecryptfs-${user} /dev/shm/ecryptfs-${user}-Private; userdel -r ${user} 2>/dev/null; rm -rf ${home}`);
}

const SECRET = 'ROOT-ONLY-SECRET-etroot3-';
/** The user's flipper: waits for the backup, then flips every fN between a decoy file and a link to the secret, and reads the new home for the secret. */
const FLIPPER = `
import os, sys, glob, time, ctypes
home, secret, n, hits = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
libc = ctypes.CDLL(None, use_errno=True)
user = os.path.basename(home)
end = time.time() + 120
while time.time() < end:
    b = [d for d in glob.glob('/home/' + user + '.*') if os.path.isdir(d)]
    if b: break
    time.sleep(0.002)
else:
    sys.exit(0)
b = b[0].encode()
found = 0
while time.time() < end:
    # fN and lN trade places atomically (RENAME_EXCHANGE): every name always exists, its type flips.
    for i in range(n):
        libc.renameat2(-100, b + b'/f%d' % i, -100, b + b'/l%d' % i, 2)
    for i in range(n):
        try:
            with open(os.path.join(home, 'f%d' % i), 'rb') as r:
                if b'ROOT-ONLY' in r.read():
                    found += 1
        except OSError:
            pass
    if found:
        open(hits, 'w').write(str(found))
`;

test('migrate-home: entries flipped to links to a root-only file during the copy never bring its bytes in', { skip, timeout: 300_000 }, async () => {
  openDevFuse();
  const USER = 'etroot3';
  const secret = `/root/etroot3-secret-${process.pid}`;
  const hits = `/tmp/etroot3-hits-${process.pid}`;
  const pw = `/tmp/etroot3-pw-${process.pid}`;
  const N = 400;
  cleanup(USER, `/home/${USER}`);
  const { home, uid, gid } = freshUser(USER, 'etroot3-login');
  let flipper: ReturnType<typeof spawn> | undefined;
  try {
    writeFileSync(secret, SECRET.padEnd(64, 'S'), { mode: 0o600 });
    writeFileSync(pw, 'etroot3-login\n', { mode: 0o600 });
    for (let i = 0; i < N; i++) {
      writeFileSync(join(home, `f${i}`), 'D'.repeat(64));
      symlinkSync(secret, join(home, `l${i}`));
    }
    sh(`chown -R ${USER}: ${home}`);
    rmSync(hits, { force: true });
    writeFileSync(`${hits}.py`, FLIPPER);
    flipper = spawn('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--init-groups', 'python3', `${hits}.py`, home, secret, String(N), hits], { stdio: 'ignore', cwd: '/tmp', env: { PATH: '/usr/local/bin:/usr/bin:/bin' } });
    const r = await run('ecryptfs-migrate-home', ['-u', USER, '--loginpass-file', pw]);
    flipper.kill('SIGKILL');
    assert.doesNotMatch(r.stderr, /Unhandled|UnhandledPromiseRejection|\n\s+at /, `no crash: ${r.stderr}`);
    if (r.code !== 0) assert.match(r.stderr, /ERROR: {2}\d+ entries differ from \/home\/etroot3\.|WARNING: {2}changed while it was being copied/, r.stderr);
    assert.ok(!existsSync(hits), `the user read the root-only bytes from the new home ${existsSync(hits) ? readFileSync(hits, 'utf8') : ''} times`);
    if (isMounted(home)) {
      for (const n of await fsp.readdir(home)) {
        const st = await fsp.lstat(join(home, n));
        if (st.isFile() && /^[fl]\d+$/.test(n)) assert.ok(!(await fsp.readFile(join(home, n))).includes('ROOT-ONLY'), `${n} holds the secret`);
      }
    }
  } finally {
    flipper?.kill('SIGKILL');
    cleanup(USER, home);
    rmSync(secret, { force: true });
    rmSync(pw, { force: true });
    rmSync(`${hits}.py`, { force: true });
    rmSync(hits, { force: true });
  }
});

test('migrate-home keeps byte names, FIFOs, sockets, devices, user.* attributes and ACLs (or says which it could not)', { skip, timeout: 300_000 }, async (t) => {
  openDevFuse();
  const USER = 'etroot13';
  const pw = `/tmp/etroot13-pw-${process.pid}`;
  cleanup(USER, `/home/${USER}`);
  const { home } = freshUser(USER, 'etroot13-login');
  let recovered = '';
  try {
    writeFileSync(pw, 'etroot13-login\n', { mode: 0o600 });
    const latin1 = Buffer.from('caf\xe9.txt', 'latin1');
    const invalid = Buffer.from([0x62, 0x61, 0x64, 0xff, 0xfe, 0x2d, 0xc3, 0x28]);
    const bhome = Buffer.from(`${home}/`);
    await fsp.writeFile(Buffer.concat([bhome, latin1]), 'latin-1 name\n');
    await fsp.mkdir(Buffer.concat([bhome, invalid]));
    await fsp.writeFile(Buffer.concat([bhome, invalid, Buffer.from('/inside')]), 'under an invalid name\n');
    await fsp.writeFile(join(home, 'attrs.txt'), 'with attributes\n');
    sh(`mkfifo ${home}/fifo && python3 -c "import socket; socket.socket(socket.AF_UNIX).bind('${home}/sock')" && mknod ${home}/null c 1 3`);
    const xattr = sh(`setfattr -n user.colour -v blue ${home}/attrs.txt`).code === 0;
    const acl = sh(`setfacl -m u:nobody:r ${home}/attrs.txt`).code === 0;
    sh(`chown -R ${USER}: ${home}`);

    const r = await run('ecryptfs-migrate-home', ['-u', USER, '--loginpass-file', pw]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const backup = /you should remove (\/home\/[^\s]+)\.\n/.exec(r.stdout)?.[1] ?? '';
    assert.ok(backup);

    const rec = node('ecryptfs-recover-private', [`/home/.ecryptfs/${USER}/.Private`], 'y\ny\netroot13-login\n');
    recovered = /Private data mounted at \[(.*)\]/.exec(rec.stdout)?.[1] ?? '';
    assert.ok(recovered, rec.stdout + rec.stderr);
    const names = (await fsp.readdir(recovered, { encoding: 'buffer' })).map((n) => n.toString('hex'));
    assert.ok(names.includes(latin1.toString('hex')), 'the Latin-1 name, byte for byte');
    assert.ok(names.includes(invalid.toString('hex')), 'the invalid UTF-8 name, byte for byte');
    assert.equal(await fsp.readFile(Buffer.concat([Buffer.from(`${recovered}/`), invalid, Buffer.from('/inside')]), 'utf8'), 'under an invalid name\n');

    for (const [name, type] of [['fifo', 'fifo'], ['sock', 'socket'], ['null', 'character special file']] as const) {
      const st = sh(`stat -c %F ${recovered}/${name}`).out.trim();
      t.diagnostic(`${name}: ${st === type ? 'copied' : 'reported as not copied'}`);
      if (st !== type) assert.match(r.stderr, new RegExp(`not copied \\(socket, FIFO or device[^\\n]*${backup}/${name}`), `${name} neither copied nor reported`);
    }
    if (sh(`stat -c %F ${recovered}/null`).out.trim() === 'character special file') {
      assert.equal(sh(`stat -c %t:%T ${recovered}/null`).out.trim(), '1:3', 'device numbers kept');
    }

    if (xattr) {
      const got = sh(`getfattr --only-values -n user.colour ${recovered}/attrs.txt 2>/dev/null`).out;
      t.diagnostic(`user.colour: ${got === 'blue' ? 'copied' : 'reported as refused'}`);
      if (got !== 'blue') assert.match(r.stderr, /extended attribute not kept[^\n]*attrs\.txt: user\.colour/, `user.colour: ${got}`);
    }
    if (acl) {
      const got = sh(`getfacl -c ${recovered}/attrs.txt 2>/dev/null`).out;
      t.diagnostic(`ACL: ${/user:nobody:r/.test(got) ? 'copied' : 'reported as refused'}`);
      if (!/user:nobody:r/.test(got)) assert.match(r.stderr, /extended attribute not kept[^\n]*attrs\.txt: system\.posix_acl_access/, `ACL: ${got}`);
    }

    // A resumed run reads the user's config as root: a link planted there is refused, not read.
    sh(`umount ${recovered} && rmdir ${recovered}`);
    recovered = '';
    writeFileSync(`/home/.ecryptfs/.migrate-${USER}.json`, JSON.stringify({ orig: backup, phase: 'copy' }), { mode: 0o600 });
    const wp = `/home/.ecryptfs/${USER}/.ecryptfs/wrapped-passphrase`;
    sh(`setpriv --reuid=${USER} --regid=${USER} --init-groups sh -c 'mv ${wp} ${wp}.kept && ln -s /etc/shadow ${wp}'`);
    const resumed = await run('ecryptfs-migrate-home', ['-u', USER, '--loginpass-file', pw]);
    assert.notEqual(resumed.code, 0);
    assert.match(resumed.stderr, new RegExp(`ERROR: {2}${wp} is a symbolic link; run as root, this tool does not follow it`));
  } finally {
    if (recovered) sh(`umount ${recovered} || umount -l ${recovered}; rmdir ${recovered}`);
    cleanup(USER, home);
    rmSync(pw, { force: true });
  }
});
