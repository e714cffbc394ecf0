/** ecryptfs-verify against a Private setup laid out like the real ecryptfs-setup-private's. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { FIXTURES, tempDir } from '../helpers/fixtures.js';
import { DIST_SRC } from '../cli/run.js';

async function fakeHome(): Promise<{ home: string; cleanup(): void }> {
  const t = tempDir('ecryptfs-verify-');
  const m = JSON.parse(readFileSync(join(FIXTURES, 'corpus', 'setup-private', 'manifest.json'), 'utf8'));
  const dot = join(t.path, '.ecryptfs');
  await fsp.mkdir(dot, { mode: 0o700 });
  await fsp.mkdir(join(t.path, 'Private'), { mode: 0o500 });
  await fsp.mkdir(join(t.path, '.Private'), { mode: 0o700 });
  await fsp.writeFile(join(dot, 'Private.sig'), m.dot_ecryptfs['Private.sig'].text, { mode: 0o600 });
  await fsp.writeFile(join(dot, 'Private.mnt'), `${join(t.path, 'Private')}\n`, { mode: 0o600 });
  await fsp.writeFile(join(dot, 'wrapped-passphrase'), Buffer.from(m.dot_ecryptfs['wrapped-passphrase'].hex, 'hex'), { mode: 0o600 });
  await fsp.writeFile(join(dot, 'auto-mount'), '');
  return { home: t.path, cleanup: t.cleanup };
}


test('a good Private setup passes -p -e with the real tool\'s messages; problems fail with a fix', async () => {
  const h = await fakeHome();
  try {
    const script = `import { verifyMain } from '${DIST_SRC}cli/verify.js'; process.exitCode = await verifyMain(process.argv.slice(1));`;
    const runV = (args: string[]) => spawnSync(process.execPath, ['--input-type=module', '-e', script, '--', ...args], { encoding: 'utf8', env: { ...process.env, HOME: h.home, USER: 'root' } });
    const ok = runV(['-p', '-e']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /INFO: \[.*\/\.ecryptfs\/Private\.sig\] contains \[2\] signatures/);
    assert.match(ok.stdout, /INFO: Filenames are encrypted/);
    assert.match(ok.stdout, /INFO: Ownership \[root\] of mount point \[.*\/Private\] is correct/);
    assert.match(ok.stdout, /is a version 2 wrapped passphrase/);
    const real = spawnSync('sh', ['-c', 'command -v ecryptfs-verify']).status === 0 ? spawnSync('ecryptfs-verify', ['-p', '-e'], { encoding: 'utf8', env: { ...process.env, HOME: h.home, USER: 'root' } }) : undefined;
    if (real) {
      assert.equal(real.status, 0, real.stderr);
      for (const line of real.stdout.split('\n').filter(Boolean)) assert.ok(ok.stdout.includes(line), `our output has the real tool's line: ${line}`);
    }
    const home = runV(['-h']);
    assert.equal(home.status, 1);
    assert.match(home.stderr, /ERROR: Mount point \[.*\] is not the user's home/);
    await fsp.chmod(join(h.home, '.ecryptfs', 'wrapped-passphrase'), 0o644);
    const loose = runV(['-p']);
    assert.equal(loose.status, 1);
    assert.match(loose.stderr, /readable by others[\s\S]*fix: chmod 600/);
    const none = runV([]);
    assert.match(none.stderr, /No checks given/);
  } finally {
    h.cleanup();
  }
});
