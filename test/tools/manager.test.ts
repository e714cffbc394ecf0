/** ecryptfs-manager scripted on stdin against the real kernel keyring. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { deriveKey, DEFAULT_SALT, FNEK_SALT } from '../../src/format/kdf.js';
import { tool } from '../cli/run.js';

const skip = spawnSync('keyctl', ['show', '@u']).status === 0 ? false : 'no kernel keyring (keyctl from keyutils)';
const has = (sig: string) => spawnSync('keyctl', ['search', '@u', 'user', sig]).status === 0;
const drop = (sig: string) => spawnSync('sh', ['-c', `id=$(keyctl search @u user ${sig}) && keyctl unlink $id @u`]);

test('add a passphrase key and its FNEK, list them, remove one, as the seed\'s workaround needs', { skip }, async () => {
  const file = deriveKey('manager-test-pass', DEFAULT_SALT).sig;
  const fnek = deriveKey('manager-test-pass', FNEK_SALT).sig;
  drop(file);
  drop(fnek);
  try {
    const r = await tool('ecryptfs-manager', [], `1\nmanager-test-pass\n\n5\n6\n${fnek}\n4\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /eCryptfs key management menu\n-------------------------------\n\t1\. Add passphrase key to keyring/);
    assert.match(r.stdout, new RegExp(`Added key to keyring with signature \\[${file}\\]\\.\\nAdded key to keyring with signature \\[${fnek}\\]\\.`));
    assert.match(r.stdout, new RegExp(`\\t\\[${file}\\]`));
    assert.match(r.stdout, new RegExp(`Removed key with signature \\[${fnek}\\]\\.`));
    assert.ok(has(file) && !has(fnek));
    assert.ok(!r.stdout.includes('manager-test-pass'), 'the passphrase is not echoed');
    const again = await tool('ecryptfs-manager', [], '1\nmanager-test-pass\nn\n7\n4\n');
    assert.match(again.stdout, new RegExp(`Key with signature \\[${file}\\] already in the keyring\\.`));
    assert.match(again.stdout, /Invalid selection/);
  } finally {
    drop(file);
    drop(fnek);
  }
});
