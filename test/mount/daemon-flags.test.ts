/**
 * The daemon's Node flags (DAEMON_NODE_FLAGS): every one must be accepted by the Node that runs
 * the mounts (a flag it does not know would make every mount fail with "bad option"), and they
 * must take effect: a small new space.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DAEMON_NODE_FLAGS, daemonCommand } from '../../src/mount/daemon-fork.js';
import { tempDir } from '../helpers/fixtures.js';

test('the daemon flags are accepted by this Node and keep the new space small', () => {
  const script = `
    const v8 = require('node:v8');
    const keep = [];
    for (let i = 0; i < 300000; i++) keep.push({ i });
    const s = Object.fromEntries(v8.getHeapSpaceStatistics().map((x) => [x.space_name, x.space_size]));
    process.stdout.write(JSON.stringify({ newSpace: s.new_space, kept: keep.length }));`;
  const r = spawnSync(process.execPath, [...DAEMON_NODE_FLAGS, '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { newSpace: number; kept: number };
  assert.equal(out.kept, 300000);
  assert.ok(out.newSpace <= 4 << 20, `new space ${out.newSpace} bytes, expected at most 4 MiB (two 2 MiB semi-spaces)`);
  // Without the flags this Node grows it well past that (the default semi-space is 16 MiB).
  const d = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.ok((JSON.parse(d.stdout) as { newSpace: number }).newSpace > 4 << 20, 'the flags make the difference');
});

test('the daemon boot loads its script and the heap flags still hold (they are set back to V8 defaults only while modules load)', () => {
  // daemon-boot.js sets the heap flags to V8's defaults while the daemon's modules load (so Node
  // keeps its built-in modules' code cache) and back after: the semi-space was sized at start.
  const t = tempDir('ecryptfs-boot-');
  try {
    // An ES module (the daemon unbundled, through import()) and CommonJS (the bundle, through require).
    for (const [name, head] of [['probe.mjs', "import v8 from 'node:v8';"], ['probe.cjs', "const v8 = require('node:v8');"]]) {
      const script = join(t.path, name);
      writeFileSync(script, `
        ${head}
        const keep = [];
        for (let i = 0; i < 300000; i++) keep.push({ i });
        const s = Object.fromEntries(v8.getHeapSpaceStatistics().map((x) => [x.space_name, x.space_size]));
        process.stdout.write(JSON.stringify({ newSpace: s.new_space, argv: process.argv.slice(1) }));`);
      const [boot] = daemonCommand();
      const r = spawnSync(process.execPath, [...DAEMON_NODE_FLAGS, boot, script], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { newSpace: number; argv: string[] };
      assert.ok(out.newSpace <= 4 << 20, `${name}: new space ${out.newSpace} bytes, expected at most 4 MiB`);
      assert.deepEqual(out.argv, [boot, script]);
    }
  } finally {
    t.cleanup();
  }
});
