/** ecryptfs-manager scripted on stdin against the real kernel keyring; every key added is removed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { deriveKey, DEFAULT_SALT, FNEK_SALT } from '../../src/format/kdf.js';
import { tool } from '../cli/run.js';

const skip = spawnSync('keyctl', ['show', '@u']).status === 0 ? false : 'no kernel keyring (keyctl from keyutils)';
const has = (sig: string) => spawnSync('keyctl', ['search', '@u', 'user', sig]).status === 0;
const drop = (sig: string) => spawnSync('sh', ['-c', `id=$(keyctl search @u user ${sig}) && keyctl unlink $id @u`]);

// The real ecryptfs-manager (ecryptfs-utils 111) printed this menu, and for the passphrase
// "realmgr-pass" "Added key to keyring with signature [f2797e43eac302cf]." (recorded on Debian 12).
const REAL_MENU = '\neCryptfs key management menu\n-------------------------------\n\t1. Add passphrase key to keyring\n\t2. Add public key to keyring\n\t3. Generate new public/private keypair\n\t4. Exit\n';

test('add a passphrase key and its FNEK, list them, remove one, as the seed\'s workaround needs', { skip }, async () => {
  const pass = 'manager-test-pass';
  const file = deriveKey(pass, DEFAULT_SALT).sig;
  const fnek = deriveKey(pass, FNEK_SALT).sig;
  drop(file);
  drop(fnek);
  try {
    const r = await tool('ecryptfs-manager', [], `1\n${pass}\n${pass}\n\n5\n6\n${fnek}\n4\n`);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stdout.startsWith(REAL_MENU), r.stdout);
    assert.ok(r.stdout.includes('Make selection: \n\n\tMount-wide passphrase: \n\tConfirm passphrase: \n\tUsing the default salt value\n'), r.stdout);
    assert.ok(r.stdout.includes(`\nAdded key to keyring with signature [${file}].\n\nAdded key to keyring with signature [${fnek}].\n`));
    assert.ok(r.stdout.includes(`\t[${file}]\n`) && r.stdout.includes(`\t[${fnek}]\n`), 'option 5 lists both');
    assert.ok(r.stdout.includes(`Removed key with signature [${fnek}] from the user keyring.\n`));
    assert.ok(has(file) && !has(fnek));
    assert.ok(!r.stdout.includes(pass) && !r.stderr.includes(pass), 'the passphrase is never echoed');

    const again = await tool('ecryptfs-manager', [], `1\n${pass}\n${pass}\nn\n7\n6\n${fnek}\n6\nxyz\n`);
    assert.equal(again.code, 0, 'end of input is as 4. Exit');
    assert.ok(again.stdout.includes(`That key was already in the keyring.\n(signature [${file}])\n`));
    assert.ok(!has(fnek), 'n: no FNEK added');
    // As the real tool: "Invalid selection" and the prompt again, no menu.
    assert.ok(again.stdout.includes('Make selection: \nInvalid selection\n\nMake selection: '));
    assert.ok(again.stdout.includes(`No key with signature [${fnek}] in the user keyring.\n`));
    assert.ok(again.stdout.includes('Not a key signature: [xyz]'));
  } finally {
    drop(file);
    drop(fnek);
  }
});

test('the key added is the one the real tool adds; a mismatched confirmation adds nothing', { skip }, async () => {
  const sig = 'f2797e43eac302cf';
  assert.equal(deriveKey('realmgr-pass', DEFAULT_SALT).sig, sig);
  const fnek = deriveKey('realmgr-pass', FNEK_SALT).sig;
  const had = has(sig);
  const hadFnek = has(fnek);
  try {
    const bad = await tool('ecryptfs-manager', [], '1\nrealmgr-pass\nrealmgr-typo\n4\n');
    assert.equal(bad.code, 0);
    assert.ok(bad.stdout.includes('\tConfirm passphrase: \nPassphrase mismatch. Aborting mount\n'));
    if (!had) assert.ok(!has(sig));
    const ok = await tool('ecryptfs-manager', [], '1\nrealmgr-pass\nrealmgr-pass\ny\n4\n');
    assert.match(ok.stdout, had ? /That key was already in the keyring\./ : /Added key to keyring with signature \[f2797e43eac302cf\]\./);
    assert.ok(has(sig) && has(fnek));
    const long = await tool('ecryptfs-manager', [], `1\n${'x'.repeat(65)}\n${'x'.repeat(65)}\n4\n`);
    assert.ok(long.stdout.includes('Invalid passphrase. Aborting mount.\n'));
  } finally {
    if (!had) drop(sig);
    if (!hadFnek) drop(fnek);
  }
});
