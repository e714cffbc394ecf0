/** Packet lengths (ECRYPTFS-FORMAT §3.1) and the cipher table (§3.6). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isEcryptfsError } from '../../src/errors.js';
import { decodePacketLength, encodePacketLength, MAX_PACKET_LENGTH, packetLengthSize } from '../../src/format/packetlen.js';
import { checkKeyBytes, cipherCode, cipherFromCode, CIPHERS, validKeyBytes } from '../../src/format/ciphers.js';
import { CIPHER_NAMES } from '../../src/crypto/types.js';

const runs = (n: number) => Number(process.env.FUZZ_RUNS ?? n);

test('packet lengths: 1 byte below 192, 2 bytes up to 8383, the kernel formula', () => {
  assert.deepEqual([...encodePacketLength(0)], [0]);
  assert.deepEqual([...encodePacketLength(191)], [191]);
  assert.deepEqual([...encodePacketLength(192)], [192, 0]);
  assert.deepEqual([...encodePacketLength(200)], [192, 8]);
  assert.deepEqual([...encodePacketLength(447)], [192, 255]);
  assert.deepEqual([...encodePacketLength(448)], [193, 0]);
  assert.deepEqual([...encodePacketLength(8383)], [223, 255]);
  assert.equal(MAX_PACKET_LENGTH, 8383);
  for (const bad of [8384, 65535, -1, 1.5, NaN]) assert.throws(() => encodePacketLength(bad), (e: unknown) => isEcryptfsError(e, 'EINVAL'), String(bad));
  assert.deepEqual(decodePacketLength(Buffer.from([0x8c, 0x1d]), 1), { length: 29, bytesUsed: 1 });
  assert.deepEqual(decodePacketLength(Buffer.from([223, 255])), { length: 8383, bytesUsed: 2 });
  assert.equal(packetLengthSize(191), 1);
  assert.equal(packetLengthSize(192), 2);
});

test('packet lengths: bad first bytes and truncation are typed errors', () => {
  for (let b0 = 224; b0 <= 254; b0++) assert.throws(() => decodePacketLength(Buffer.from([b0, 0])), (e: unknown) => isEcryptfsError(e, 'ECORRUPT'));
  assert.throws(() => decodePacketLength(Buffer.from([255, 0, 0, 0, 0])), (e: unknown) => isEcryptfsError(e, 'EUNSUPPORTED'));
  assert.throws(() => decodePacketLength(Buffer.from([200])), (e: unknown) => isEcryptfsError(e, 'ECORRUPT'));
  assert.throws(() => decodePacketLength(Buffer.alloc(0)), (e: unknown) => isEcryptfsError(e, 'ECORRUPT'));
  assert.throws(() => decodePacketLength(Buffer.from([5]), 1), (e: unknown) => isEcryptfsError(e, 'ECORRUPT'));
});

test('packet lengths round-trip (property) and random bytes decode or fail typed', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: MAX_PACKET_LENGTH }), fc.uint8Array({ maxLength: 3 }), (n, tail) => {
      const enc = encodePacketLength(n);
      assert.equal(enc.length, packetLengthSize(n));
      assert.deepEqual(decodePacketLength(Buffer.concat([enc, tail])), { length: n, bytesUsed: enc.length });
    }),
    { numRuns: runs(2000) },
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 4 }), fc.nat(5), (b, off) => {
      try {
        const r = decodePacketLength(b, off);
        assert.ok(r.length <= MAX_PACKET_LENGTH && (r.bytesUsed === 1 || r.bytesUsed === 2));
      } catch (e) {
        if (!isEcryptfsError(e)) throw e;
      }
    }),
    { numRuns: runs(2000) },
  );
});

test('cipher table: helper menu values, codes, key sizes', () => {
  const menu = CIPHER_NAMES.map((c) => `${c}: blocksize = ${CIPHERS[c].menuBlockSize}; min keysize = ${CIPHERS[c].minKeyBytes}; max keysize = ${CIPHERS[c].maxKeyBytes}`);
  // As the real mount.ecryptfs prints it (seed transcript), blowfish's "16" included.
  assert.deepEqual(menu, [
    'aes: blocksize = 16; min keysize = 16; max keysize = 32',
    'blowfish: blocksize = 16; min keysize = 16; max keysize = 56',
    'des3_ede: blocksize = 8; min keysize = 24; max keysize = 24',
    'twofish: blocksize = 16; min keysize = 16; max keysize = 32',
    'cast6: blocksize = 16; min keysize = 16; max keysize = 32',
    'cast5: blocksize = 8; min keysize = 5; max keysize = 16',
  ]);
  assert.deepEqual(CIPHERS.aes.keySizes, [16, 32, 24]);
  assert.equal(CIPHERS.blowfish.blockSize, 8);
  const codes: Array<[(typeof CIPHER_NAMES)[number], number, number]> = [
    ['aes', 16, 0x07], ['aes', 24, 0x08], ['aes', 32, 0x09], ['blowfish', 16, 0x04], ['blowfish', 56, 0x04],
    ['des3_ede', 24, 0x02], ['cast5', 16, 0x03], ['twofish', 32, 0x0a], ['cast6', 32, 0x0b],
  ];
  for (const [name, kb, code] of codes) {
    assert.equal(cipherCode(name, kb), code, `${name}-${kb}`);
    assert.equal(cipherFromCode(code).name, name);
  }
  assert.deepEqual(cipherFromCode(0x08), { name: 'aes', keyBytes: 24 });
  assert.equal(cipherFromCode(0x04).keyBytes, undefined);
  for (const c of CIPHER_NAMES) for (const kb of CIPHERS[c].keySizes) assert.ok(validKeyBytes(c, kb), `${c}-${kb}`);
  assert.throws(() => cipherCode('aes', 20), (e: unknown) => isEcryptfsError(e, 'EINVAL'));
  assert.throws(() => checkKeyBytes('des3_ede', 16), (e: unknown) => isEcryptfsError(e, 'EINVAL'));
  assert.throws(() => checkKeyBytes('serpent', 16), (e: unknown) => isEcryptfsError(e, 'EINVAL'));
  assert.throws(() => checkKeyBytes('blowfish', 57), (e: unknown) => isEcryptfsError(e, 'EINVAL'));
  assert.throws(() => cipherFromCode(0x01), (e: unknown) => isEcryptfsError(e, 'EUNSUPPORTED'));
  for (let c = 0; c < 256; c++) {
    if ([2, 3, 4, 7, 8, 9, 10, 11].includes(c)) continue;
    assert.throws(() => cipherFromCode(c), (e: unknown) => isEcryptfsError(e, 'EUNSUPPORTED'));
  }
});
