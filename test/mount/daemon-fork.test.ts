/**
 * The daemon forked as a mount command's first step (daemon-fork.ts): which arguments get it,
 * and a command that ends without mounting (usage error, --help, refused option) leaves no
 * daemon behind and is not held open by it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { preforkFits } from '../../src/mount/daemon-fork.js';

test('preforkFits: a background mount yes; --help, -h, -V, -f and --foreground no; -o values are not flags', () => {
  assert.equal(preforkFits(['/l', '/u']), true);
  assert.equal(preforkFits(['/l', '/u', '-o', 'key=passphrase:passphrase_passwd_file=/f,ro']), true);
  assert.equal(preforkFits(['-o', '-f', '/l', '/u']), true, 'the value of -o is no flag');
  assert.equal(preforkFits(['-ofoo', '/l', '/u']), true);
  assert.equal(preforkFits(['--options=-h', '/l', '/u']), true);
  for (const a of [['--help'], ['-h'], ['-V'], ['--version'], ['-f', '/l', '/u'], ['/l', '/u', '--foreground'], ['-sfnv', '/l', '/u'], ['--', '/l']]) {
    assert.equal(preforkFits(a), false, a.join(' '));
  }
});

const DAEMON_FORK = fileURLToPath(new URL('../../src/mount/daemon-fork.js', import.meta.url));

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

test('an unused preforked daemon neither keeps the command alive nor outlives it', { skip: process.getuid?.() !== 0 ? 'forks the root daemon: needs root' : false }, async () => {
  // The command forks, reports the daemons' pids (its main thread's children) and ends without
  // taking them, as a usage error does; one asked for in the other mode is killed at once.
  const script = `
    import { readFileSync } from 'node:fs';
    const { preforkRootDaemon, takePreforkedDaemon } = await import(${JSON.stringify(DAEMON_FORK)});
    preforkRootDaemon(false);
    const other = takePreforkedDaemon(true);
    preforkRootDaemon(false);
    const kids = readFileSync('/proc/self/task/' + process.pid + '/children', 'utf8').trim();
    process.stdout.write(JSON.stringify({ other: other === undefined, kids: kids.split(' ').map(Number) }));`;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, `${r.signal ?? ''} ${r.stderr}`);
  assert.ok(Date.now() - t0 < 15_000, 'the command was not held open by its daemon');
  const out = JSON.parse(r.stdout) as { other: boolean; kids: number[] };
  assert.equal(out.other, true, 'a daemon forked for the other mode is not handed out');
  assert.ok(out.kids.length >= 1 && out.kids.every((k) => k > 0), r.stdout);
  for (let i = 0; i < 100 && out.kids.some(alive); i++) await new Promise((res) => setTimeout(res, 50));
  assert.deepEqual(out.kids.filter(alive), [], 'no preforked daemon outlives the command');
});

const FORK_CJS = fileURLToPath(new URL('../../src/bundle/daemon-fork.cjs', import.meta.url));

test('bin/ecryptfs.js forks through the CommonJS daemon-fork, and the command takes that daemon through the ES module', { skip: process.getuid?.() !== 0 ? 'forks the root daemon: needs root' : (existsSync(FORK_CJS) ? false : 'no bundle (npm run build)') }, () => {
  // Two module instances in one process (the launcher's CommonJS copy, the command's ES module):
  // the daemon forked through one is the one the other hands out, forked once.
  const script = `
    import { readFileSync } from 'node:fs';
    import { createRequire } from 'node:module';
    const cjs = createRequire(import.meta.url)(${JSON.stringify(FORK_CJS)});
    const esm = await import(${JSON.stringify(DAEMON_FORK)});
    cjs.preforkRootDaemon(false);
    esm.preforkRootDaemon(false);
    const kids = readFileSync('/proc/self/task/' + process.pid + '/children', 'utf8').trim().split(' ').map(Number);
    const child = esm.takePreforkedDaemon(false);
    process.stdout.write(JSON.stringify({ kids, pid: child?.pid ?? null, again: esm.takePreforkedDaemon(false) === undefined }));
    child?.kill();`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, `${r.signal ?? ''} ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { kids: number[]; pid: number | null; again: boolean };
  assert.equal(out.kids.length, 1, `one daemon forked: ${r.stdout}`);
  assert.equal(out.pid, out.kids[0], 'the ES module hands out the daemon the CommonJS copy forked');
  assert.equal(out.again, true, 'at most once');
});
