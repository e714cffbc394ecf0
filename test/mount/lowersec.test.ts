/**
 * Issue #12's attacks on a root mount of a lower directory an ordinary user owns, performed as
 * that user (real accounts made here with useradd): symlink and FIFO swaps in the lower tree,
 * RENAME_EXCHANGE races against create, deep trees, a huge truncate killed midway, many open
 * files and directories, setgid directories and trusted.* xattrs. Each asserts that no root-owned
 * file outside the lower tree changes, no root-only byte reaches the user, and the daemon stays
 * responsive.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mountSkipReason, mountVolume, sh, type TestMount } from './harness.js';
import { readMountState } from '../../src/mount/state.js';
import { tempDir } from '../helpers/fixtures.js';
import fc from 'fast-check';
import { encryptFilename } from '../../src/format/filename.js';
import { KeyRing } from '../../src/volume/keyring.js';
import { Volume } from '../../src/volume/volume.js';

const skip = mountSkipReason();
const U1 = 'etsec1';
const U2 = 'etsec2';
const G = 'etsecg';
/** The system python (a user cannot run root's pyenv shims). */
const PY = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const OPTS = 'ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n';

let uid1 = 0;
let gidG = 0;

/** Run python3 code as `user` (its own uid, gid and groups), with a time limit. */
function py(user: string, code: string, timeoutMs = 60000): { code: number | null; out: string; timedOut: boolean } {
  const r = spawnSync('setpriv', ['--reuid', user, '--regid', user, '--init-groups', PY, '-c', code], { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, out: `${r.stdout}${r.stderr}`, timedOut: r.error !== undefined || r.signal !== null };
}

/** Start python3 code as `user` in the background (output piped). */
function pyBg(user: string, code: string): ChildProcess {
  return spawn('setpriv', ['--reuid', user, '--regid', user, '--init-groups', PY, '-c', code], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The scene: a temp dir (0755) holding a user-owned lower dir, root's secrets, and the mount. */
interface Scene {
  m: TestMount;
  lower: string;
  upper: string;
  secret: string;
  rootDir: string;
  cleanup(): Promise<void>;
}

const SECRET = 'ROOT-ONLY-SECRET-BYTES\n';

async function scene(options = OPTS): Promise<Scene> {
  const t = tempDir('etsec-');
  chmodSync(t.path, 0o755);
  const lower = join(t.path, 'lower');
  mkdirSync(lower);
  chownSync(lower, uid1, uid1);
  const secret = join(t.path, 'secret');
  writeFileSync(secret, SECRET, { mode: 0o600 });
  const rootDir = join(t.path, 'rootdir');
  mkdirSync(rootDir, { mode: 0o700 });
  const m = await mountVolume(options, { lower });
  chmodSync(m.root, 0o755);
  return {
    m, lower, upper: m.upper, secret, rootDir,
    async cleanup() {
      await m.cleanup();
      t.cleanup();
    },
  };
}

/** `body` in a fresh scene; then whatever U1 left running is killed (it could hold the mount busy)
 * and the scene is cleaned up. */
async function inScene(body: (s: Scene) => Promise<void>, options = OPTS): Promise<void> {
  const s = await scene(options);
  try {
    await body(s);
  } finally {
    sh(`pkill -9 -u ${U1}`);
    await s.cleanup();
  }
}

/** Root's files are as they were: mode, owner and bytes of the secret, nothing in rootDir. */
function assertRootUntouched(s: Scene): void {
  const st = lstatSync(s.secret);
  assert.equal(st.mode & 0o7777, 0o600, 'the root-owned secret keeps mode 0600');
  assert.equal(st.uid, 0);
  assert.equal(readFileSync(s.secret, 'utf8'), SECRET, 'the root-owned secret keeps its bytes');
  assert.deepEqual(readdirSync(s.rootDir), [], 'nothing was created in the root-owned directory');
}

async function daemonPid(upper: string): Promise<number> {
  const st = await readMountState(upper);
  assert.ok(st, 'mount state');
  return st.pid;
}

function responsive(s: Scene): void {
  const r = py(U1, `import os; print(sorted(os.listdir(${JSON.stringify(s.upper)})))`, 10000);
  assert.ok(!r.timedOut && r.code === 0, `the mount still answers: ${r.out}`);
}

/** Remove this file's users and group, whatever an earlier run left (processes included). */
function dropUsers(): void {
  for (const u of [U1, U2]) {
    for (let i = 0; i < 20 && sh(`pkill -9 -u ${u}`).code === 0; i++) sh('sleep 0.1');
    sh(`userdel -f ${u} 2>/dev/null`);
  }
  sh(`groupdel ${G} 2>/dev/null`);
}

before(() => {
  if (skip) return;
  dropUsers();
  assert.equal(sh(`groupadd ${G} && useradd -M -s /bin/sh -G ${G} ${U1} && useradd -M -s /bin/sh ${U2}`).code, 0);
  uid1 = Number(sh(`id -u ${U1}`).out.trim());
  gidG = Number(sh(`getent group ${G} | cut -d: -f3`).out.trim());
});

after(() => {
  if (!skip) dropUsers();
});

test('item 1: symlinks swapped into the lower tree never let chmod, truncate or create reach root files', { skip }, async () => {
  await inScene(async (s) => {
    const r = py(U1, `
import os
U, L, S, R = ${JSON.stringify([s.upper, s.lower, s.secret, s.rootDir])}
fd = os.open(U + '/f', os.O_RDWR | os.O_CREAT, 0o644)
os.rename(L + '/f', L + '/f.away'); os.symlink(S, L + '/f')
try: os.fchmod(fd, 0o4777)
except OSError as e: print('fchmod', e.errno)
with open(U + '/g', 'w') as g: g.write('x')
os.rename(L + '/g', L + '/g.away'); os.symlink(S, L + '/g')
try: os.truncate(U + '/g', 0)
except OSError as e: print('truncate', e.errno)
os.mkdir(U + '/d'); os.listdir(U + '/d')
os.rename(L + '/d', L + '/d.away'); os.symlink(R, L + '/d')
try: open(U + '/d/x', 'w').write('planted')
except OSError as e: print('create', e.errno)
try: print('read', open(U + '/g').read())
except OSError as e: print('read', e.errno)
`);
    assert.equal(r.code, 0, r.out);
    assert.ok(!r.out.includes('ROOT-ONLY'), `no root byte reached the user: ${r.out}`);
    assertRootUntouched(s);
    responsive(s);
  });
});

test('item 9: RENAME_EXCHANGE races against create never leave a root-owned (setuid) file; mounts of user dirs are nosuid,nodev', { skip }, async () => {
  await inScene(async (s) => {
    const line = readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[1] === s.upper) ?? '';
    assert.match(line.split(' ')[3], /(^|,)nosuid(,|$)/, line);
    assert.match(line.split(' ')[3], /(^|,)nodev(,|$)/, line);
    // The attacker exchanges a placeholder with each new file's lower name while it is created.
    const racer = pyBg(U1, `
import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
L = ${JSON.stringify(s.lower)}
open(L + '/placeholder', 'w').close()
end = time.time() + 4
while time.time() < end:
    for i in range(40):
        libc.renameat2(-100, (L + '/placeholder').encode(), -100, (L + '/s%d' % i).encode(), 2)
`);
    const r = py(U1, `
import os, time
U = ${JSON.stringify(s.upper)}
time.sleep(0.3)
for i in range(40):
    try:
        fd = os.open(U + '/s%d' % i, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o4755)
        os.write(fd, b'#!/bin/sh\\nid -u\\n'); os.close(fd)
    except OSError as e: pass
`);
    await new Promise((res) => racer.on('exit', res));
    assert.equal(r.code, 0, r.out);
    const rootOwned = sh(`find ${s.lower} -uid 0`).out.trim();
    assert.equal(rootOwned, '', `no root-owned file in the user's lower tree: ${rootOwned}`);
    const created = readdirSync(s.lower).filter((n) => /^s\d+$/.test(n));
    assert.ok(created.length > 0);
    for (const n of created) assert.equal(lstatSync(join(s.lower, n)).uid, uid1, `${n} belongs to its creator`);
    assertRootUntouched(s);
  });
});

test('item 10: a FIFO swapped in under a file name never blocks the daemon (read-write and read-only mounts)', { skip }, async () => {
  const s = await scene();
  let ro: TestMount | undefined;
  try {
    const swap = (upper: string, name: string) => `
import os
U, L = ${JSON.stringify([upper, s.lower])}
os.stat(U + '/${name}')
os.unlink(L + '/${name}'); os.mkfifo(L + '/${name}')
for mode in ('r', 'r+'):
    try: open(U + '/${name}', mode).read(); print('opened')
    except OSError as e: print('open', mode, e.errno)
`;
    const rw = py(U1, `open(${JSON.stringify(s.upper)} + '/p', 'w').write('data'); open(${JSON.stringify(s.upper)} + '/q', 'w').write('data')\n${swap(s.upper, 'p')}`, 15000);
    assert.ok(!rw.timedOut, `opening the swapped name returned: ${rw.out}`);
    responsive(s);
    // Read-only: the daemon opens read-only, which blocks on a FIFO unless non-blocking.
    await s.m.umount();
    ro = await mountVolume(`${OPTS},ro`, { lower: s.lower });
    chmodSync(ro.root, 0o755);
    const r = py(U1, swap(ro.upper, 'q'), 15000);
    assert.ok(!r.timedOut, `opening the swapped name on a read-only mount returned: ${r.out}`);
    const other = py(U2, `import os; print(os.listdir(${JSON.stringify(ro.upper)}))`, 10000);
    assert.ok(!other.timedOut && other.code === 0, `another user is served: ${other.out}`);
  } finally {
    sh(`pkill -9 -u ${U1}`);
    if (ro) {
      const pid = await readMountState(ro.upper).then((st) => st?.pid, () => undefined);
      if (pid) sh(`kill -9 ${pid}; umount -l ${ro.upper}`);
      await ro.cleanup();
    }
    await s.cleanup();
  }
});

test('item 8: a clear path under PATH_MAX whose lower path is longer works (descriptor-relative)', { skip }, async () => {
  const s = await scene(OPTS.replace('filename_crypto=n', 'filename_crypto=y'));
  try {
    const r = py(U1, `
import os
U, L = ${JSON.stringify([s.upper, s.lower])}
p = U
for i in range(28):
    p = p + '/' + ('d%02d' % i) + 'x' * 97
    os.mkdir(p)
open(p + '/leaf', 'w').write('deep')
print(len(p), open(p + '/leaf').read())
lower_len = 0
for root, dirs, files, fd in os.fwalk(L):
    lower_len = max(lower_len, len(root))
print('lower', lower_len)
`);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /deep/);
    const lowerLen = Number(/lower (\d+)/.exec(r.out)?.[1]);
    assert.ok(lowerLen > 4096, `the lower path is past PATH_MAX (${lowerLen})`);
  } finally {
    await s.m.umount();
    sh(`rm -rf ${s.lower}`); // fts walks by descriptor; Node's rm would meet ENAMETOOLONG
    await s.cleanup();
  }
});

test('item 7: a truncate past the lower limit is EFBIG at once; a long one stops on INTERRUPT (a caught signal), when its caller dies, or when the daemon gets SIGTERM', { skip }, async () => {
  await inScene(async (s) => {
    const fsType = sh(`stat -f -c %T ${s.lower}`).out.trim();
    const t0 = Date.now();
    const big = py(U1, `
import os
open(${JSON.stringify(s.upper)} + '/huge', 'w').close()
try: os.truncate(${JSON.stringify(s.upper)} + '/huge', 999999999999999); print('grew')
except OSError as e: print('errno', e.errno)
`, 20000);
    if (fsType === 'ext2/ext3') {
      assert.match(big.out, /errno 27/, `EFBIG on ${fsType}: ${big.out}`);
      assert.ok(Date.now() - t0 < 10000);
    }
    // A long truncate (within the limit): its caller is killed; the daemon stops writing.
    const victim = pyBg(U1, `
import os
open(${JSON.stringify(s.upper)} + '/long', 'w').close()
os.truncate(${JSON.stringify(s.upper)} + '/long', 200 * 1024**3)
`);
    await new Promise((r) => setTimeout(r, 1500));
    victim.kill('SIGKILL');
    await new Promise((r) => victim.on('exit', r));
    await new Promise((r) => setTimeout(r, 1500));
    const a = statSync(join(s.lower, 'long')).size;
    await new Promise((r) => setTimeout(r, 1500));
    const b = statSync(join(s.lower, 'long')).size;
    // A daemon that does not stop would fill the disk: end it before failing.
    if (b !== a) process.kill(await daemonPid(s.upper), 'SIGKILL');
    assert.equal(b, a, `the lower file stopped growing after its caller died (${a} -> ${b})`);
    responsive(s);
    // The file is consistent: its size field is covered by the extents on disk.
    const size = py(U1, `import os; print(os.stat(${JSON.stringify(s.upper)} + '/long').st_size)`);
    const clear = Number(size.out.trim());
    assert.ok(clear <= b - 8192 && clear > 0, `size field ${clear} within the lower file (${b})`);
    // A caught signal during a long truncate: the kernel sends INTERRUPT, the truncate stops.
    const caught = pyBg(U1, `
import os, signal
class Stop(Exception): pass
def stop(*a): raise Stop()
signal.signal(signal.SIGUSR1, stop)
open(${JSON.stringify(s.upper)} + '/intr', 'w').close()
try: os.truncate(${JSON.stringify(s.upper)} + '/intr', 200 * 1024**3); print('finished', flush=True)
except Stop: print('interrupted', flush=True)
`);
    let said = '';
    caught.stdout!.on('data', (d: Buffer) => (said += d.toString()));
    await new Promise((r) => setTimeout(r, 1500));
    caught.kill('SIGUSR1');
    const ended = await Promise.race([new Promise((r) => caught.on('exit', () => r(true))), new Promise((r) => setTimeout(() => r(false), 10000))]);
    if (!ended) process.kill(await daemonPid(s.upper), 'SIGKILL');
    assert.ok(ended, 'the interrupted truncate returned within 10 s');
    assert.match(said, /interrupted/);
    // SIGTERM during a long truncate: the daemon ends promptly.
    const pid = await daemonPid(s.upper);
    const again = pyBg(U1, `
import os
os.truncate(${JSON.stringify(s.upper)} + '/long', 300 * 1024**3)
`);
    again.on('error', () => undefined);
    await new Promise((r) => setTimeout(r, 1000));
    process.kill(pid, 'SIGTERM');
    let gone = false;
    for (let i = 0; i < 100 && !gone; i++) {
      await new Promise((r) => setTimeout(r, 100));
      gone = !existsSync(`/proc/${pid}`);
    }
    again.kill('SIGKILL');
    assert.ok(gone, 'the daemon ended within 10 s of SIGTERM');
  });
});

test('item 11: one user holding many files and directories open cannot exhaust the daemon', { skip }, async () => {
  await inScene(async (s) => {
    const pid = await daemonPid(s.upper);
    const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    const limit = Number(/Max open files\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))?.[1]);
    assert.ok(limit > 0);
    // A big directory, made directly in the lower tree (plain names are listed too).
    sh(`cd ${s.lower} && mkdir big && cd big && seq 1 20000 | xargs touch && chown -R ${U1}: ${s.lower}/big`);
    const rss0 = rss();
    // Directories held by one process, files by another (each process has the daemon's limit).
    const hogDirs = pyBg(U1, `
import os, time
held = []
for i in range(150):
    fd = os.open(${JSON.stringify(s.upper)} + '/big', os.O_RDONLY | os.O_DIRECTORY)
    it = os.scandir(fd); next(it)
    held.append((fd, it))
print('dirs', len(held), flush=True)
time.sleep(120)
`);
    const hog = pyBg(U1, `
import os, resource, time
U = ${JSON.stringify(s.upper)}
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = []
files = 0; err = 0
for i in range(hard):
    try:
        held.append(os.open(U + '/f%d' % i, os.O_RDWR | os.O_CREAT, 0o600)); files += 1
    except OSError as e:
        err = e.errno; break
print('held', files, err, flush=True)
time.sleep(120)
`);
    let out = '';
    hog.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    hog.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    hogDirs.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    hogDirs.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    for (let i = 0; i < 1800 && !(out.includes('held') && out.includes('dirs')); i++) await new Promise((r) => setTimeout(r, 100));
    try {
      assert.match(out, /held/, out);
      assert.match(out, /dirs 150/, out);
      const [, files, err] = /held (\d+) (\d+)/.exec(out)!.map(Number);
      assert.ok(files < limit - 100, `the user was stopped well before the daemon's limit (${files} of ${limit}, errno ${err})`);
      const dirs = 150;
      const grown = (rss() - rss0) / 1024;
      assert.ok(grown < 200, `daemon RSS grew ${grown.toFixed(0)} MB for ${dirs} open 20,000-entry directories`);
      // Another user and root are still served, files and directories.
      const other = py(U2, `import os; print(len(os.listdir(${JSON.stringify(s.upper)} + '/big')))`, 20000);
      assert.ok(other.code === 0 && other.out.includes('20000'), `another user lists: ${other.out}`);
      writeFileSync(join(s.upper, 'root-file'), 'root still writes');
      assert.equal(readFileSync(join(s.upper, 'root-file'), 'utf8'), 'root still writes');
    } finally {
      hog.kill('SIGKILL');
      hogDirs.kill('SIGKILL');
    }
  });
});

test('item 12: setgid directories give new files their group; supplementary groups count; trusted.* stays hidden from users', { skip }, async () => {
  await inScene(async (s) => {
    const sg = join(s.lower, 'shared');
    mkdirSync(sg);
    chownSync(sg, uid1, gidG);
    chmodSync(sg, 0o2775);
    const r = py(U1, `
import os
U = ${JSON.stringify(s.upper)}
open(U + '/shared/new', 'w').write('x')
os.mkdir(U + '/shared/sub')
open(U + '/t', 'w').write('x')
`);
    assert.equal(r.code, 0, r.out);
    assert.equal(lstatSync(join(sg, 'new')).gid, gidG, 'the new file has the setgid directory\'s group');
    assert.equal(lstatSync(join(sg, 'sub')).gid, gidG, 'the new directory too');
    assert.equal(lstatSync(join(sg, 'sub')).mode & 0o2000, 0o2000, 'and stays setgid');
    // Supplementary groups count: a member of the group writes in its 0770 directory, others not.
    const grp = join(s.lower, 'grp');
    mkdirSync(grp);
    chownSync(grp, 0, gidG);
    chmodSync(grp, 0o770);
    const member = py(U1, `open(${JSON.stringify(join(s.upper, 'grp', 'm'))}, 'w').write('x'); print('ok')`);
    assert.match(member.out, /ok/, `the group member writes: ${member.out}`);
    assert.equal(lstatSync(join(grp, 'm')).uid, uid1);
    const stranger = py(U2, `
try: open(${JSON.stringify(join(s.upper, 'grp', 's'))}, 'w').write('x'); print('wrote')
except OSError as e: print('errno', e.errno)
`);
    assert.match(stranger.out, /errno 13/, `a non-member is refused: ${stranger.out}`);
    assert.equal(sh(`setfattr -n trusted.etsec -v secret ${join(s.lower, 't')}`).code, 0);
    const l = py(U1, `import os; print(os.listxattr(${JSON.stringify(join(s.upper, 't'))}))`);
    assert.equal(l.code, 0, l.out);
    assert.ok(!l.out.includes('trusted.'), `trusted.* not listed to the user: ${l.out}`);
    const g = py(U1, `
import os
try: print(os.getxattr(${JSON.stringify(join(s.upper, 't'))}, 'trusted.etsec'))
except OSError as e: print('errno', e.errno)
`);
    assert.ok(!g.out.includes('secret'), g.out);
  });
});

test('property: crafted encrypted names (.., ../../x, a/b, NUL) through the mount never reach outside the lower tree', { skip }, async () => {
  await inScene(async (s) => {
    const outside = join(s.lower, '..');
    writeFileSync(join(s.upper, 'seed'), 'seed');
    const ring = new KeyRing();
    await ring.addPassphrase('mount-test-passphrase');
    const vol = await Volume.open(s.lower, ring, { readOnly: true });
    const fnek = ring.get(vol.fnekSig!)!;
    const before = readdirSync(outside).sort();
    const segment = fc.constantFrom('..', '.', 'x', 'etc', 'passwd', 'a\0b', '');
    const hostile = fc.oneof(
      fc.constantFrom('..', '.', '../../x', 'a/b', 'sub/../../x', '/etc/passwd', 'x\0y', '\0'),
      fc.array(segment, { minLength: 1, maxLength: 5 }).map((a) => a.join('/')),
    ).filter((n) => n.length > 0 && (n === '.' || n === '..' || n.includes('/') || n.includes('\0')));
    await fc.assert(
      fc.asyncProperty(hostile, fc.boolean(), async (clear, asDir) => {
        const lowerName = encryptFilename(Buffer.from(clear, 'utf8'), fnek, vol.fnCipher, vol.fnKeyBytes);
        const p = join(s.lower, lowerName);
        if (asDir) mkdirSync(p, { recursive: true });
        else writeFileSync(p, 'HOSTILE');
        const r = py(U1, `
import os
U = ${JSON.stringify(s.upper)}
names = os.listdir(U)
print(sorted(names))
for n in names:
    p = os.path.join(U, n)
    if os.path.isfile(p): open(p).read()
    elif os.path.isdir(p): os.listdir(p); open(os.path.join(p, 'made'), 'w').write('x'); os.unlink(os.path.join(p, 'made'))
`, 20000);
        assert.equal(r.code, 0, r.out);
        assert.ok(!r.out.includes('HOSTILE'), r.out);
        assert.deepEqual(JSON.parse(r.out.trim().replace(/'/g, '"')), ['seed'], `the crafted name ${JSON.stringify(clear)} is hidden`);
        assert.deepEqual(readdirSync(outside).sort(), before, 'nothing created next to the lower tree');
        assertRootUntouched(s);
        sh(`rm -rf ${JSON.stringify(p)}`);
      }),
      { numRuns: 25 },
    );
    vol.close();
  }, OPTS.replace('filename_crypto=n', 'filename_crypto=y'));
});

test('item 12: the node table is keyed by (dev, ino): the same inode number on two lower filesystems is two files', { skip }, async () => {
  // Two tmpfs instances number their inodes alike: the lower root and a directory in it.
  const t = tempDir('ecryptfs-devino-');
  const lower = join(t.path, 'lower');
  mkdirSync(lower);
  sh(`mount -t tmpfs -o size=4m tmpfs ${lower}`);
  let m: TestMount | undefined;
  try {
    m = await mountVolume(OPTS, { lower });
    const upper = m.upper;
    mkdirSync(join(upper, 'sub'));
    sh(`mount -t tmpfs -o size=4m tmpfs ${join(lower, 'sub')}`);
    // Same order of creation on both: tmpfs hands out the same inode numbers.
    const made: string[] = [];
    for (let i = 0; i < 8; i++) {
      writeFileSync(join(upper, `top-${i}`), `top ${i}\n`);
      writeFileSync(join(upper, 'sub', `low-${i}`), `low ${i}\n`);
      made.push(`top-${i}`, `sub/low-${i}`);
    }
    const lowerIno = (p: string) => lstatSync(join(lower, p)).ino;
    const tops = new Set(made.filter((p) => p.startsWith('top')).map(lowerIno));
    const clash = made.filter((p) => p.startsWith('sub/') && tops.has(lowerIno(p)));
    assert.ok(clash.length > 0, 'the test needs an inode number that both lower filesystems use');
    for (const p of made) assert.equal(readFileSync(join(upper, p), 'utf8'), `${p.startsWith('top') ? 'top' : 'low'} ${p.slice(-1)}\n`, p);
  } finally {
    await m?.umount();
    sh(`umount -l ${join(lower, 'sub')} 2>/dev/null; umount -l ${lower}`);
    t.cleanup();
  }
});
