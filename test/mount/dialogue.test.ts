/** The mount.ecryptfs dialogue and option parsing, answered by a script. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isEcryptfsError } from '../../src/errors.js';
import { runDialogue, type DialogueIO } from '../../src/mount/dialogue.js';
import { helperOptionList, kernelOptionString, parseMountOptions } from '../../src/mount/options.js';
import { parseSigCache } from '../../src/mount/sigcache.js';

function scripted(answers: string[]): { io: DialogueIO; transcript: () => string } {
  let t = '';
  const io: DialogueIO = {
    interactive: true,
    out: (s) => (t += s),
    line: async (p) => {
      const a = answers.shift() ?? '';
      t += `${p}${a}\n`;
      return a;
    },
    secret: async (p) => {
      const a = answers.shift() ?? '';
      t += `${p}\n`;
      return Buffer.from(a);
    },
  };
  return { io, transcript: () => t };
}

test("the seed's interactive session: prompts, order, defaults and the option list", async () => {
  const { io, transcript } = scripted(['secret', '', '', '', 'y', '']);
  const o = parseMountOptions('');
  await runDialogue(o, io, async () => '6860c372da7bc418', async () => Buffer.alloc(0));
  const expected = [
    'Passphrase: ',
    'Select cipher: ',
    '1) aes: blocksize = 16; min keysize = 16; max keysize = 32 (loaded)',
    '2) blowfish: blocksize = 16; min keysize = 16; max keysize = 56 (loaded)',
    '3) des3_ede: blocksize = 8; min keysize = 24; max keysize = 24 (loaded)',
    '4) twofish: blocksize = 16; min keysize = 16; max keysize = 32 (loaded)',
    '5) cast6: blocksize = 16; min keysize = 16; max keysize = 32 (loaded)',
    '6) cast5: blocksize = 8; min keysize = 5; max keysize = 16 (loaded)',
    'Selection [aes]: ',
    '',
    'Select key bytes: ',
    '1) 16',
    '2) 32',
    '3) 24',
    'Selection [16]: ',
    '',
    'Enable plaintext passthrough (y/n) [n]: ',
    'Enable filename encryption (y/n) [n]: y',
    'Filename Encryption Key (FNEK) Signature [6860c372da7bc418]: ',
    'Attempting to mount with the following options:',
    '  ecryptfs_unlink_sigs',
    '  ecryptfs_fnek_sig=6860c372da7bc418',
    '  ecryptfs_key_bytes=16',
    '  ecryptfs_cipher=aes',
    '  ecryptfs_sig=6860c372da7bc418',
    '',
  ].join('\n');
  assert.equal(transcript(), expected);
  assert.equal(kernelOptionString(o), 'rw,ecryptfs_fnek_sig=6860c372da7bc418,ecryptfs_sig=6860c372da7bc418,ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_fn_cipher=aes,ecryptfs_fn_key_bytes=16,ecryptfs_unlink_sigs');
});

test('options given on the command line are not asked; the list matches the real helper', async () => {
  const o = parseMountOptions('key=passphrase:passphrase_passwd=oracle-pass-aes128-passthrough,ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=y,ecryptfs_enable_filename_crypto=n,no_sig_cache');
  const { io, transcript } = scripted([]);
  const r = await runDialogue(o, io, async () => '03ef2b34ad74f636', async () => Buffer.alloc(0));
  assert.equal(r.passphrase?.toString(), 'oracle-pass-aes128-passthrough');
  // Same lines as the corpus mount.log of the real helper.
  assert.equal(transcript(), 'Attempting to mount with the following options:\n  ecryptfs_unlink_sigs\n  ecryptfs_passthrough\n  ecryptfs_key_bytes=16\n  ecryptfs_cipher=aes\n  ecryptfs_sig=03ef2b34ad74f636\n');
  assert.ok(o.noSigCache);
  assert.deepEqual(helperOptionList(o).slice(-1), ['ecryptfs_sig=03ef2b34ad74f636']);
});

test('every documented option parses; bad values are typed errors', () => {
  const o = parseMountOptions('ecryptfs_sig=0123456789abcdef,ecryptfs_fnek_sig=fedcba9876543210,ecryptfs_cipher=twofish,ecryptfs_key_bytes=32,ecryptfs_fn_cipher=aes,ecryptfs_fn_key_bytes=16,ecryptfs_passthrough,ecryptfs_xattr_metadata,ecryptfs_unlink_sigs,ecryptfs_mount_auth_tok_only,no_sig_cache,verbosity=0,ro,nosuid');
  assert.deepEqual(o.sigs, ['0123456789abcdef']);
  assert.equal(o.fnekSig, 'fedcba9876543210');
  assert.equal(o.cipher, 'twofish');
  assert.equal(o.fnCipher, 'aes');
  assert.ok(o.passthrough && o.xattrMetadata && o.unlinkSigs && o.mountAuthTokOnly && o.noSigCache && o.readOnly);
  assert.equal(o.verbosity, 0);
  assert.deepEqual(o.generic, ['nosuid']);
  const ev = parseMountOptions('ecryptfs_encrypted_view');
  assert.ok(ev.readOnly && ev.xattrMetadata);
  for (const bad of ['ecryptfs_sig=xyz', 'ecryptfs_cipher=rot13', 'ecryptfs_key_bytes=abc', 'ecryptfs_bogus', 'key=gpg', 'ecryptfs_passthrough=maybe']) {
    assert.throws(() => parseMountOptions(bad), (e: unknown) => isEcryptfsError(e), bad);
  }
});

test('option and sig-cache parsers never throw anything but typed errors (property)', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 200 }), (s) => {
      try {
        parseMountOptions(s);
      } catch (e) {
        if (!isEcryptfsError(e)) throw e;
      }
      parseSigCache(s);
    }),
    { numRuns: Number(process.env.FUZZ_RUNS ?? 20000) },
  );
  assert.deepEqual([...parseSigCache('0123456789abcdef\nzzzzzzzzzzzzzzzz\nfedcba9876543210\n')], ['0123456789abcdef', 'fedcba9876543210']);
});
