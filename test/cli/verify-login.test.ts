/** ecryptfs-verify's login diagnostics find the session counter where home/counter.ts keeps it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { loginDiagnostics } from '../../src/cli/verify.js';
import { counterLockPath, counterPath } from '../../src/home/counter.js';
import { tempDir } from '../helpers/fixtures.js';

test('the counter of counterPath(USER) is reported with its count, a lock that is no directory is warned about', async () => {
  const t = tempDir('ecryptfs-verify-login-');
  try {
    const uid = process.getuid?.() ?? 0;
    const counter = counterPath('etverify1', 'Private', t.path);
    writeFileSync(counter, '2\n', { mode: 0o600 });
    writeFileSync(counterLockPath(counter), '');
    const info: string[] = [];
    const warn: string[] = [];
    await loginDiagnostics('etverify1', uid, { info: (m) => info.push(m), warn: (m) => warn.push(m), pamDir: t.path, shm: t.path, logs: [] });
    assert.ok(info.some((m) => m.startsWith(`[${counter}] (session counter)`) && m.endsWith(': 2 open session(s)')), info.join('\n'));
    assert.ok(warn.some((m) => m.startsWith(`[${counter}.lock] (session counter lock) is a file`)), warn.join('\n'));
    mkdirSync(t.path + '/empty');
    info.length = warn.length = 0;
    await loginDiagnostics('etverify1', uid, { info: (m) => info.push(m), warn: (m) => warn.push(m), pamDir: t.path, shm: `${t.path}/empty`, logs: [] });
    assert.deepEqual([info, warn], [[], []], 'no counter, nothing to say');
  } finally {
    t.cleanup();
  }
});
