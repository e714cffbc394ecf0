/** Running programs (src/sys/run.ts): input on stdin, output captured, 127 for a missing program, the timeout. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { run, runSync } from '../../src/sys/run.js';

test('input goes to stdin, stdout comes back as bytes, stderr trimmed, the exit code kept', async () => {
  const r = await run('sh', ['-c', 'cat; echo " oops " >&2; exit 3'], { input: Buffer.from([0, 1, 2, 0x0a]) });
  assert.deepEqual([r.code, [...r.stdout], r.stderr, r.error], [3, [0, 1, 2, 0x0a], 'oops', undefined]);
  const s = runSync('sh', ['-c', 'cat; exit 4'], { input: 'secret\n' });
  assert.deepEqual([s.code, s.stdout.toString()], [4, 'secret\n']);
});

test('a program that is not installed is code 127 with ENOENT, never a throw', async () => {
  const r = await run('/nonexistent/ecryptfs-ts-no-such-tool', []);
  assert.equal(r.code, 127);
  assert.equal(r.error?.code, 'ENOENT');
  assert.equal(runSync('/nonexistent/ecryptfs-ts-no-such-tool', []).code, 127);
});

test('a child past its timeout is killed', async () => {
  const t = Date.now();
  const r = await run('sleep', ['30'], { timeout: 200 });
  assert.notEqual(r.code, 0);
  assert.ok(Date.now() - t < 10_000);
});
