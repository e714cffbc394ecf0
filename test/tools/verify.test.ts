/**
 * ecryptfs-verify against Private and encrypted-home setups laid out like the real
 * ecryptfs-setup-private's (the corpus' Private.sig and wrapped-passphrase), in temporary homes.
 * Where ecryptfs-utils' own ecryptfs-verify is installed, its lines must all be in ours.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { userInfo } from 'node:os';
import { FIXTURES, tempDir } from '../helpers/fixtures.js';
import { BIN, runNode } from '../cli/run.js';

const tool = (name: string, args: string[], input: string, env: NodeJS.ProcessEnv) => runNode(`${BIN}${name}.js`, args, input, { env });

const REAL = spawnSync('sh', ['-c', 'command -v ecryptfs-verify']).status === 0;
const USER = userInfo().username;

async function fakeHome(kind: 'private' | 'home' = 'private'): Promise<{ home: string; root: string; cleanup(): void }> {
  const t = tempDir('ecryptfs-verify-');
  const home = join(t.path, 'home');
  const m = JSON.parse(readFileSync(join(FIXTURES, 'corpus', 'setup-private', 'manifest.json'), 'utf8'));
  const dot = join(home, '.ecryptfs');
  await fsp.mkdir(dot, { recursive: true, mode: 0o700 });
  const mnt = kind === 'home' ? home : join(home, 'Private');
  if (kind === 'private') await fsp.mkdir(mnt, { mode: 0o500 });
  await fsp.mkdir(join(home, '.Private'), { mode: 0o700 });
  await fsp.writeFile(join(dot, 'Private.sig'), m.dot_ecryptfs['Private.sig'].text, { mode: 0o600 });
  await fsp.writeFile(join(dot, 'Private.mnt'), `${mnt}\n`, { mode: 0o600 });
  await fsp.writeFile(join(dot, 'wrapped-passphrase'), Buffer.from(m.dot_ecryptfs['wrapped-passphrase'].hex, 'hex'), { mode: 0o600 });
  await fsp.writeFile(join(dot, 'auto-mount'), '');
  await fsp.mkdir(join(t.path, 'proc'));
  await fsp.writeFile(join(t.path, 'proc/mounts'), 'proc /proc proc rw 0 0\n');
  return { home, root: t.path, cleanup: t.cleanup };
}

const env = (h: { home: string; root: string }) => ({ HOME: h.home, USER, ECRYPTFS_ROOT: h.root });
const ours = (h: { home: string; root: string }, args: string[]) => tool('ecryptfs-verify', args, '', env(h));
const real = (h: { home: string }, args: string[]) => spawnSync('ecryptfs-verify', args, { encoding: 'utf8', env: { ...process.env, HOME: h.home, USER }, timeout: 10_000 });

/** Every line the real tool printed is in ours, in the same order. */
function sameLines(realOut: string, ourOut: string) {
  let at = 0;
  for (const line of realOut.split('\n').filter(Boolean)) {
    const i = ourOut.indexOf(`${line}\n`, at);
    assert.ok(i >= 0, `our output has the real tool's line (in order): ${line}\n--- ours:\n${ourOut}`);
    at = i + line.length;
  }
}

test('a good Private setup passes -p -e with the real tool\'s messages and ours', async () => {
  const h = await fakeHome();
  try {
    const ok = await ours(h, ['-p', '-e']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stderr, '');
    assert.match(ok.stdout, /INFO: \[.*\/\.ecryptfs\/Private\.sig\] contains \[2\] signatures/);
    assert.match(ok.stdout, /INFO: Filenames are encrypted/);
    assert.ok(ok.stdout.includes(`INFO: Ownership [${USER}] of mount point [${h.home}/Private] is correct\n`));
    assert.ok(ok.stdout.includes(`INFO: [${h.home}/.ecryptfs/wrapped-passphrase] is a version 2 wrapped passphrase\n`));
    assert.ok(ok.stdout.includes(`INFO: [${h.home}/Private] is not mounted\n`));
    assert.match(ok.stdout, /INFO: Configuration valid\n$/);
    if (REAL) {
      const r = real(h, ['-p', '-e']);
      assert.equal(r.status, 0, r.stderr);
      sameLines(r.stdout, ok.stdout);
    }
    // Mounted through FUSE (our mount) or the kernel: both are recognised.
    await fsp.writeFile(join(h.root, 'proc/mounts'), `${h.home}/.Private ${h.home}/Private fuse.ecryptfs rw,nosuid,nodev 0 0\n`);
    const fuse = await ours(h, ['-p']);
    assert.ok(fuse.stdout.includes(`INFO: [${h.home}/Private] is mounted (fuse.ecryptfs) from [${h.home}/.Private]\n`), fuse.stdout);
    await fsp.writeFile(join(h.root, 'proc/mounts'), `/elsewhere ${h.home}/Private ecryptfs rw,ecryptfs_sig=00 0 0\n`);
    const other = await ours(h, ['-p']);
    assert.equal(other.code, 0);
    assert.ok(other.stderr.includes(`WARNING: [${h.home}/Private] is mounted from [/elsewhere], not from [${h.home}/.Private]`), other.stderr);
  } finally {
    h.cleanup();
  }
});

test('an encrypted home passes -h; the checks fail as the real tool\'s do, each with a fix', async () => {
  const h = await fakeHome('home');
  try {
    const ok = await ours(h, ['-h', '-e']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.ok(ok.stdout.includes(`INFO: [${h.home}/.ecryptfs/auto-mount] Automount is set\n`));
    assert.ok(ok.stdout.includes(`INFO: Mount point [${h.home}] is the user's home\n`));
    if (REAL) sameLines(real(h, ['-h', '-e']).stdout, ok.stdout);
    // The same failures as the real tool, first line for line, then our fix.
    const cases: Array<{ args: string[]; change?: () => Promise<void>; expect: RegExp }> = [
      { args: ['-p'], expect: /ERROR: Mount point \[.*\] is the user's home\n {2}fix: .*ecryptfs-verify -h/ },
      { args: ['-n'], expect: /ERROR: Filenames are encrypted\n/ },
      { args: ['-h'], change: () => fsp.rm(join(h.home, '.ecryptfs/auto-mount')), expect: /ERROR: \[.*\/auto-mount\] does not exist\n {2}fix: touch / },
      { args: ['-h'], change: () => fsp.writeFile(join(h.home, '.ecryptfs/Private.sig'), 'a\nb\nc\n'), expect: /ERROR: \[.*Private\.sig\] does not contain exactly 1 or 2 lines\n {2}fix: / },
      { args: ['-e'], change: () => fsp.rm(join(h.home, '.ecryptfs/Private.sig')), expect: /ERROR: \[.*Private\.sig\] does not exist\n/ },
      { args: ['-p'], change: () => fsp.rm(join(h.home, '.ecryptfs'), { recursive: true }), expect: /ERROR: \[.*\/\.ecryptfs\] does not exist\n/ },
    ];
    for (const c of cases) {
      await c.change?.();
      const r = await ours(h, c.args);
      assert.equal(r.code, 1, `${c.args} should fail`);
      assert.match(r.stderr, c.expect);
      assert.match(r.stderr, /ERROR: Configuration invalid\n$/);
      if (REAL) {
        const rr = real(h, c.args);
        assert.equal(rr.status, 1);
        sameLines(rr.stderr, r.stderr);
        sameLines(rr.stdout, r.stdout);
      }
    }
  } finally {
    h.cleanup();
  }
});

test('what the real tool does not check: modes, the wrapped passphrase, the lower directory, options', async () => {
  const h = await fakeHome();
  const dot = join(h.home, '.ecryptfs');
  try {
    // -e needs no Private.mnt (the real tool's -e reads only Private.sig), -p does.
    await fsp.rename(join(dot, 'Private.mnt'), join(dot, 'mnt.away'));
    assert.equal((await ours(h, ['-e'])).code, 0);
    assert.match((await ours(h, ['-p'])).stderr, /ERROR: \[.*Private\.mnt\] does not exist\n {2}fix: echo /);
    await fsp.rename(join(dot, 'mnt.away'), join(dot, 'Private.mnt'));

    await fsp.chmod(join(dot, 'wrapped-passphrase'), 0o644);
    const loose = await ours(h, ['-p']);
    assert.equal(loose.code, 1);
    assert.match(loose.stderr, /wrapped-passphrase\] is accessible by others \(mode 0644\)\n {2}fix: chmod 600 /);
    await fsp.writeFile(join(dot, 'wrapped-passphrase'), 'not a wrapped passphrase at all', { mode: 0o600 });
    assert.match((await ours(h, ['-p'])).stderr, /is not a wrapped-passphrase file \(version 1 or 2\)\n {2}fix: /);
    await fsp.rm(join(dot, 'wrapped-passphrase'));
    const nowp = await ours(h, ['-p']);
    assert.equal(nowp.code, 0, 'a missing wrapped passphrase is a warning');
    assert.match(nowp.stderr, /WARNING: .*wrapped-passphrase\] does not exist: login cannot mount automatically/);

    await fsp.writeFile(join(dot, 'Private.sig'), 'deadbeefdeadbeef\nnot-a-sig\n');
    assert.match((await ours(h, ['-e'])).stderr, /does not contain exactly 1 or 2 lines\n {2}fix: .*not a key signature/);
    await fsp.writeFile(join(dot, 'Private.sig'), 'deadbeefdeadbeef\n');
    assert.match((await ours(h, ['-n'])).stdout, /INFO: Filenames are not encrypted\n/);
    assert.match((await ours(h, ['-e'])).stderr, /ERROR: Filenames are not encrypted\n {2}fix: /);

    await fsp.rm(join(h.home, '.Private'), { recursive: true });
    assert.match((await ours(h, ['-p'])).stderr, /\.Private\] does not exist or is not a directory: it holds the encrypted files/);

    // --home-dir points at a home other than $HOME; bad options and no checks say so.
    const elsewhere = await tool('ecryptfs-verify', ['-n', '--home-dir', h.home], '', { HOME: '/nonexistent', USER });
    assert.equal(elsewhere.code, 0, elsewhere.stderr);
    const none = await ours(h, []);
    assert.equal(none.code, 1);
    assert.equal(none.stderr, 'ERROR: No checks given\nERROR: Configuration invalid\n');
    const bad = await ours(h, ['--frobnicate']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^ERROR: Unknown option \[--frobnicate\]\n\nUsage:/);
    const nouser = await ours(h, ['-u', 'no-such-user-ecryptfs-ts', '-p']);
    assert.equal(nouser.stderr, 'ERROR: Invalid home directory [] of [no-such-user-ecryptfs-ts]\n  fix: no-such-user-ecryptfs-ts has no passwd entry (getent passwd no-such-user-ecryptfs-ts)\nERROR: Configuration invalid\n');
    const help = await ours(h, ['--help']);
    assert.equal(help.code, 0, 'help is not an error (issue #13; the real script exits 1)');
    assert.match(help.stdout, /^\nUsage:\necryptfs-verify \[-h\|--home\]/);
  } finally {
    h.cleanup();
  }
});
