/** One table says which key sizes each cipher takes; every check (format, mount options, Volume) uses it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkKeyBytes, CIPHERS, describeKeySizes, validKeyBytes } from '../../src/format/ciphers.js';
import { CIPHER_NAMES } from '../../src/crypto/types.js';
import { createBlockCipher } from '../../src/crypto/blockcipher.js';
import { checkKeyBytes as checkMountKeyBytes, parseMountOptions } from '../../src/mount/options.js';
import { Volume } from '../../src/volume/volume.js';
import { KeyRing } from '../../src/volume/keyring.js';
import { MemLowerFs } from '../helpers/memlowerfs.js';
import { isEcryptfsError } from '../../src/errors.js';

// what the kernel's ciphers take on setkey (crypto/aes, des3_ede, twofish: multiple of 8, cast6:
// multiple of 4, blowfish 4..56, cast5 5..16), within the ecryptfs-utils helper's min/max key size
const KERNEL: Record<string, number[]> = {
  aes: [16, 24, 32],
  des3_ede: [24],
  twofish: [16, 24, 32],
  cast6: [16, 20, 24, 28, 32],
  blowfish: Array.from({ length: 41 }, (_, i) => 16 + i),
  cast5: Array.from({ length: 12 }, (_, i) => 5 + i),
};

test('the valid key sizes are the kernel\'s within the helper\'s min/max, and every one keys the cipher', () => {
  for (const c of CIPHER_NAMES) {
    assert.deepEqual([...CIPHERS[c].validKeySizes], KERNEL[c], c);
    for (let kb = 0; kb <= 64; kb++) assert.equal(validKeyBytes(c, kb), KERNEL[c].includes(kb), `${c}-${kb}`);
    for (const kb of CIPHERS[c].validKeySizes) createBlockCipher(c, Buffer.alloc(kb, 1));
    for (const kb of CIPHERS[c].keySizes) assert.ok(validKeyBytes(c, kb), `the helper offers ${c}-${kb}`);
    assert.equal(CIPHERS[c].validKeySizes[0], CIPHERS[c].minKeyBytes, c);
    assert.equal(CIPHERS[c].validKeySizes.at(-1), CIPHERS[c].maxKeyBytes, c);
  }
});

test('aes with 17-byte keys is refused everywhere, and the error names the valid sizes', async () => {
  const named = (re: RegExp) => (e: unknown) => isEcryptfsError(e, 'EINVAL') && re.test((e as Error).message);
  assert.throws(() => checkKeyBytes('aes', 17), named(/aes does not take 17-byte keys: the valid key sizes are 16, 24 or 32 bytes/));
  assert.throws(() => checkMountKeyBytes(parseMountOptions('ecryptfs_cipher=aes,ecryptfs_key_bytes=17')), named(/16, 24 or 32/));
  assert.throws(() => checkMountKeyBytes(parseMountOptions('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_fn_cipher=aes,ecryptfs_fn_key_bytes=17')), named(/filename cipher aes does not take 17-byte keys/));
  assert.throws(() => checkMountKeyBytes(parseMountOptions('ecryptfs_cipher=cast6,ecryptfs_key_bytes=18')), named(/16, 20, 24, 28 or 32/));
  assert.throws(() => checkMountKeyBytes(parseMountOptions('ecryptfs_cipher=blowfish,ecryptfs_key_bytes=57')), named(/16 to 56/));
  checkMountKeyBytes(parseMountOptions('ecryptfs_cipher=aes,ecryptfs_key_bytes=24'));
  await assert.rejects(Volume.open(new MemLowerFs(), new KeyRing(), { cipher: 'aes', keyBytes: 17 }), named(/16, 24 or 32/));
  assert.equal(describeKeySizes('des3_ede'), '24');
});
