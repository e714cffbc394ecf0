/**
 * ecryptfs-migrate-home at home-directory scale: 20,000 files with odd names, symlinks, hard
 * links, sparse files and a 1 GiB file. A run is killed (SIGKILL) in the middle of the copy, the
 * next one resumes and is killed too (with its mount daemon), a third finishes, and every entry
 * of the encrypted home then equals the backup: content, mode, owner, times, link targets and
 * hard links.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fsp, closeSync, linkSync, lutimesSync, mkdirSync, openSync, readFileSync, readdirSync, lchownSync, symlinkSync, utimesSync, writeFileSync, writeSync, ftruncateSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { verifyTree } from '../../src/home/copytree.js';
import { readMountState } from '../../src/mount/state.js';
import { isMounted, mountSkipReason, openDevFuse, sh, freshUser } from '../mount/harness.js';
import { prng } from '../helpers/prng.js';

const BIN = fileURLToPath(new URL('../../../bin/', import.meta.url));
const USER = 'ecryptfs-migrate-big';
const PASSWORD = 'some-login-pw';
const LOWER = `/home/.ecryptfs/${USER}/.Private`;
const MiB = 1 << 20;
const skip = mountSkipReason() || (sh('command -v fusermount3 && keyctl show @u').code !== 0 ? 'needs fusermount3 (fuse3) and keyctl (keyutils)' : false);

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Tools still running, for the clean-up after a failure. */
const running = new Set<ChildProcess>();

/** Run an ecryptfs-ts tool asynchronously; `watch` may kill it (it gets a killer and the stderr so far). */
function runTool(tool: string, args: string[], watch?: (kill: () => void, stderr: () => string) => void): Promise<Run> {
  const child = spawn(process.execPath, ['--openssl-legacy-provider', join(BIN, `${tool}.js`), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  child.on('exit', () => running.delete(child));
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<Run>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  watch?.(() => child.kill('SIGKILL'), () => stderr);
  return done;
}

/** Exactly `bytes` bytes long: `head` padded with two-byte 'é' and then 'x'. */
function nameOfBytes(head: string, bytes: number): string {
  let n = head;
  while (Buffer.byteLength(n) + 2 <= bytes) n += 'é';
  while (Buffer.byteLength(n) < bytes) n += 'x';
  return n;
}

const NAMES: Array<(i: number) => string> = [
  (i) => `plain-${i}.txt`,
  (i) => `spa ce ${i}`,
  (i) => `ünïcödé 名前 ${i} 🔐`,
  (i) => `quote'"s ${i}`,
  (i) => `new\nline ${i}\n`,
  (i) => `back\\slash\\ ${i}`,
  (i) => `-dash ${i}`,
  (i) => `--option=${i}`,
  (i) => `.hidden ${i}`,
  (i) => `tab\there ${i}`,
  (i) => `semi;colon&amp|pipe*star?<${i}>`,
  (i) => `$(echo no) \`x\` ${i}`,
  (i) => ` spaces around ${i} `,
  (i) => `ctrl\x01\x1f\x7f ${i}`,
  (i) => `${i}-`.padEnd(140, 'L'),
  (i) => nameOfBytes(`${i}-`, 140),
];
const FILE_MODES = [0o600, 0o640, 0o644, 0o755, 0o444, 0o700, 0o400, 0o664, 0o750, 0o000, 0o4755, 0o2750];
const DIR_MODES = [0o755, 0o750, 0o700, 0o555, 0o1777, 0o2775];
const TOP_DIRS = 10;
const SUB_DIRS = 30;
const FILES_PER_DIR = 67;
const BIG = 1024 * MiB;

interface Populated {
  files: number;
  entries: number;
  bigPath: string;
}

/**
 * Fill `home` with the tree, owned by `uid` (a few entries by root or group users); returns how
 * many regular files and entries it made. Owners are set before modes, as chown clears setuid.
 */
function populate(home: string, uid: number, gid: number): Populated {
  const rnd = prng(20_000);
  const pick = <T>(a: T[]) => a[Math.floor(rnd() * a.length)];
  // 1990..2030, with sub-second parts: times must survive at more than whole-second precision.
  const someTime = () => 631152000 + rnd() * 1262304000;
  const owner = () => {
    const r = rnd();
    return r < 0.02 ? [0, 0] : r < 0.05 ? [uid, 100] : [uid, gid];
  };
  const own = (p: string) => {
    const [u, g] = owner();
    lchownSync(p, u, g);
  };
  const pool = randomBytes(MiB);
  const dirs: string[] = [];
  let files = 0;
  let entries = 0;
  for (let t = 0; t < TOP_DIRS; t++) {
    const top = join(home, `top ${t} ${NAMES[t % NAMES.length](t)}`);
    mkdirSync(top);
    own(top);
    dirs.push(top);
    entries++;
    for (let s = 0; s < SUB_DIRS; s++) {
      const dir = join(top, NAMES[(t + s) % NAMES.length](s));
      mkdirSync(dir);
      own(dir);
      dirs.push(dir);
      entries++;
      for (let i = 0; i < FILES_PER_DIR; i++) {
        const p = join(dir, NAMES[i % NAMES.length](i));
        // Mostly small files, some around extent boundaries (4096), a few tens of KiB.
        const r = rnd();
        const size = r < 0.05 ? 0 : r < 0.6 ? Math.floor(rnd() * 2000) : r < 0.8 ? 4096 + Math.floor(rnd() * 3) - 1 : r < 0.97 ? Math.floor(rnd() * 20000) : Math.floor(rnd() * 200000);
        const off = Math.floor(rnd() * (MiB - 200000));
        const data = Buffer.from(pool.subarray(off, off + size));
        // Stamp the path in so two files never share content by accident.
        if (size >= 16) data.write(`${t}/${s}/${i}`.padEnd(16, '.'), 0);
        writeFileSync(p, data);
        own(p);
        chmodSync(p, pick(FILE_MODES));
        utimesSync(p, someTime(), someTime());
        files++;
        entries++;
      }
    }
  }
  const d0 = dirs[1];
  const d1 = dirs[2];
  const d2 = dirs[SUB_DIRS + 5];
  // Symlinks: relative, absolute, dangling, to a directory, odd targets; their own times.
  const links: Array<[string, string]> = [
    [join(d0, 'rel link'), `../${NAMES[1](1)}/${NAMES[1](1)}`],
    [join(d0, 'abs link'), '/etc/hostname'],
    [join(d0, 'dangling link'), '/nonexistent/dangling target'],
    [join(d1, 'dir link'), '..'],
    [join(d1, 'odd target link'), `new\nline 'quote' ünï ${'t'.repeat(100)}`],
    [join(home, 'link to top'), `top 0 ${NAMES[0](0)}`],
  ];
  for (const [p, target] of links) {
    symlinkSync(target, p);
    own(p);
    lutimesSync(p, someTime(), someTime());
    entries++;
  }
  // Hard links: a pair in one directory, a pair across directories, a group of three.
  const hard = (first: string, ...others: string[]) => {
    writeFileSync(first, `hard link group ${first}\n`.repeat(50));
    own(first);
    chmodSync(first, 0o640);
    for (const o of others) linkSync(first, o);
    utimesSync(first, someTime(), someTime());
    files++;
    entries += 1 + others.length;
  };
  hard(join(d0, 'hard same a'), join(d0, 'hard same b'));
  hard(join(d0, 'hard across a'), join(d2, 'hard across b'));
  hard(join(home, 'hard three 1'), join(d1, 'hard three 2'), join(d2, 'hard three ünï 3'));
  // Sparse files: holes at the start, in the middle, at the end, and nothing but a hole.
  const sparse = (name: string, size: number, parts: Array<[number, string]>) => {
    const p = join(home, name);
    const fd = openSync(p, 'w', 0o600);
    for (const [at, text] of parts) writeSync(fd, Buffer.from(text.repeat(1000)), 0, text.length * 1000, at);
    ftruncateSync(fd, size);
    closeSync(fd);
    own(p);
    utimesSync(p, someTime(), someTime());
    files++;
    entries++;
  };
  sparse('sparse hole start', 8 * MiB + 123, [[8 * MiB - 5000, 'end data ']]);
  sparse('sparse hole middle', 6 * MiB, [[0, 'head '], [5 * MiB + 77, 'tail ']]);
  sparse('sparse hole end', 9 * MiB + 1, [[0, 'only the head ']]);
  sparse('sparse all hole', 3 * MiB + 5, []);
  for (let e = 0; e < 5; e++) {
    writeFileSync(join(home, `empty ${e}`), '');
    own(join(home, `empty ${e}`));
    chmodSync(join(home, `empty ${e}`), FILE_MODES[e]);
    files++;
    entries++;
  }
  // The big file: 1 MiB of random data written 1024 times, each copy stamped with its number.
  const bigDir = dirs[4 * (SUB_DIRS + 1) + 7];
  const bigPath = join(bigDir, 'big file 1GiB.bin');
  const fd = openSync(bigPath, 'w', 0o644);
  const block = randomBytes(MiB);
  for (let b = 0; b < BIG / MiB; b++) {
    for (let k = 0; k < MiB; k += 65536) block.writeUInt32LE(b * 16 + k / 65536, k);
    writeSync(fd, block, 0, MiB, b * MiB);
  }
  closeSync(fd);
  lchownSync(bigPath, uid, gid);
  utimesSync(bigPath, someTime(), someTime());
  files++;
  entries++;
  // Directory times and modes last, deepest first: filling a directory changes its mtime.
  for (const d of dirs.reverse()) {
    chmodSync(d, pick(DIR_MODES));
    utimesSync(d, someTime(), someTime());
  }
  return { files, entries, bigPath };
}

/** How many entries the lower directory holds, and the size of its biggest file. */
function lowerCount(): { entries: number; biggest: number } {
  const r = spawnSync('find', [LOWER, '-mindepth', '1', '-printf', '%s\\n'], { encoding: 'utf8', maxBuffer: 64 * MiB });
  const sizes = r.stdout.split('\n').filter(Boolean).map(Number);
  return { entries: sizes.length, biggest: Math.max(0, ...sizes) };
}

function recover(): string {
  const r = spawnSync(process.execPath, ['--openssl-legacy-provider', join(BIN, 'ecryptfs-recover-private.js'), LOWER], { input: `y\ny\n${PASSWORD}\n`, encoding: 'utf8' });
  const at = /Private data mounted at \[(.*)\]/.exec(r.stdout)?.[1] ?? '';
  assert.ok(at, r.stdout + r.stderr);
  return at;
}

test('migrate-home: 20,000 odd files, links, holes and 1 GiB, killed twice mid-copy and resumed, equal to the backup', { skip, timeout: 25 * 60_000 }, async (t) => {
  openDevFuse();
  sh(`rm -rf /home/.ecryptfs/${USER} /home/.ecryptfs/.migrate-${USER}.json`);
  const { home, uid } = freshUser(USER, PASSWORD);
  const pw = join('/tmp', `migrate-big-pw-${process.pid}`);
  const backups = () => readdirSync('/home').filter((n) => new RegExp(`^${USER}\\.[A-Za-z0-9]{8}$`).test(n)).map((n) => join('/home', n));
  let recovered = '';
  const started = Date.now();
  const lap = (what: string, since: number) => t.diagnostic(`${what}: ${((Date.now() - since) / 1000).toFixed(1)} s`);
  try {
    const { files, bigPath } = populate(home, uid, Number(sh(`id -g ${USER}`).out.trim()));
    assert.ok(files >= 20_000, `${files} files`);
    // With the skeleton files useradd put there.
    const entries = Number(sh(`find ${home} -mindepth 1 -printf . | wc -c`).out.trim());
    lap('populate', started);
    writeFileSync(pw, `${PASSWORD}\n`, { mode: 0o600 });

    // Killed twice in the middle of the copy, each time at the first look that finds the 1 GiB
    // file half written or enough entries copied: first the command alone (its mount daemon
    // lives on and the next run reuses the mount), then the command and its daemon together,
    // as in a crash (the daemon's watchdog clears its mount; the next run mounts again with the
    // login password).
    const killedRun = async (what: string, floor: number, enough: number, daemonToo: boolean) => {
      const t0 = Date.now();
      let at = { entries: 0, biggest: 0 };
      let daemon = 0;
      const r = await runTool('ecryptfs-migrate-home', ['-u', USER, '--loginpass-file', pw], (kill, stderr) => {
        const poll = setInterval(() => {
          if (!/encrypting files now/.test(stderr())) return;
          const c = lowerCount();
          const bigHalfWritten = c.biggest > 64 * MiB && c.biggest < BIG - 64 * MiB;
          if (c.entries < floor || (!bigHalfWritten && c.entries < enough)) return;
          clearInterval(poll);
          at = c;
          if (daemonToo) readMountState(home).then((m) => (daemon = m?.pid ?? -1), () => (daemon = -1));
          kill();
        }, 250);
        poll.unref();
      });
      for (let i = 0; daemonToo && daemon === 0 && i < 100; i++) await new Promise((res) => setTimeout(res, 50));
      if (daemonToo) {
        assert.ok(daemon > 0, 'the mount daemon is known');
        process.kill(daemon, 'SIGKILL');
      }
      lap(`${what}, until killed`, t0);
      t.diagnostic(`killed with ${at.entries} of ${entries} entries in the lower directory, biggest lower file ${at.biggest} bytes`);
      assert.equal(r.signal, 'SIGKILL', r.stdout + r.stderr);
      assert.doesNotMatch(r.stdout, /Some Important Notes/);
      assert.ok(at.entries >= floor && at.entries < entries, `killed in the middle (${at.entries} of ${entries})`);
      assert.ok(readFileSync(`/home/.ecryptfs/.migrate-${USER}.json`, 'utf8').includes('"copy"'), 'the state file says the copy was under way');
      return { run: r, at };
    };
    const first = await killedRun('first run', 100, entries * 0.4, false);
    const second = await killedRun('second run', first.at.entries + entries * 0.1, entries * 0.8, true);
    assert.match(second.run.stderr, /Resuming the migration/);

    const third0 = Date.now();
    const third = await runTool('ecryptfs-migrate-home', ['-u', USER, '--loginpass-file', pw]);
    lap('third run', third0);
    assert.equal(third.code, 0, third.stdout + third.stderr);
    assert.match(third.stderr, /Resuming the migration/);
    assert.match(third.stdout, /MUST LOGIN IMMEDIATELY, _BEFORE_THE_NEXT_REBOOT_/);
    const backup = /you should remove (\/home\/[^\s]+)\.\n/.exec(third.stdout)?.[1] ?? '';
    assert.match(backup, new RegExp(`^/home/${USER}\\.[A-Za-z0-9]{8}$`), third.stdout);
    assert.deepEqual(backups(), [backup]);
    assert.ok(!isMounted(home), 'the home is unmounted at the end');
    assert.ok(!(await fsp.lstat(`/home/.ecryptfs/.migrate-${USER}.json`).catch(() => undefined)), 'the state file is gone');

    // Root reads it back on a mount of its own and compares every entry with the backup.
    const verify0 = Date.now();
    recovered = recover();
    assert.deepEqual(await verifyTree(backup, recovered), []);
    // verifyTree allows extra names only at the top, where setup's two links are.
    const inBackup = new Set(readdirSync(backup));
    assert.deepEqual(readdirSync(recovered).filter((n) => !inBackup.has(n)).sort(), ['.Private', '.ecryptfs']);
    lap('verification', verify0);
    assert.equal((await fsp.lstat(join(recovered, bigPath.slice(home.length)))).size, BIG);
    lap('whole test', started);
  } finally {
    for (const c of running) c.kill('SIGKILL');
    if (recovered) sh(`umount '${recovered}' || umount -l '${recovered}'; rmdir '${recovered}'`);
    // Anything still mounted on or under the home (the killed run's mount if the resume failed).
    for (const mp of readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '')) {
      if (mp === home || mp.startsWith(`${home}/`)) sh(`fusermount3 -uz '${mp}' 2>/dev/null || umount -l '${mp}'`);
    }
    const state = `/home/.ecryptfs/.migrate-${USER}.json`;
    sh(`pkill -9 -u ${USER} 2>/dev/null; userdel -r ${USER} 2>/dev/null; rm -rf ${pw} ${home} /home/.ecryptfs/${USER} ${state} /dev/shm/ecryptfs-${USER}-Private /dev/shm/.ecryptfs-${USER}`);
    for (const b of backups()) await fsp.rm(b, { recursive: true, force: true });
  }
});
