/**
 * Known-answer vectors from each cipher's own published specification, run through
 * createBlockCipher on every backend that serves the cipher here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBlockCipher, cipherBackend, hasLegacyProvider, type CipherBackend } from '../../src/crypto/blockcipher.js';
import type { CipherName } from '../../src/crypto/types.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const NO_LEGACY = 'OpenSSL legacy provider not loaded (start node with --openssl-legacy-provider)';

interface Vector { key: string; pt: string; ct: string; note: string }

/** Backends to try for a cipher, with a skip reason where one is unavailable. */
function backends(name: CipherName): { backend: CipherBackend; skip: string | false }[] {
  if (name === 'twofish' || name === 'cast6') return [{ backend: 'js', skip: false }];
  if (name === 'aes' || name === 'des3_ede') return [{ backend: 'openssl', skip: false }];
  return [
    { backend: 'js', skip: false },
    { backend: 'openssl', skip: hasLegacyProvider() ? false : NO_LEGACY },
  ];
}

function kat(name: CipherName, source: string, vectors: Vector[]): void {
  for (const { backend, skip } of backends(name)) {
    test(`${name} (${backend}): ${source}`, { skip }, () => {
      for (const v of vectors) {
        const c = createBlockCipher(name, hex(v.key), { backend });
        assert.equal(c.backend, backend);
        assert.equal(c.ecbEncrypt(hex(v.pt)).toString('hex'), hex(v.ct).toString('hex'), `encrypt ${v.note}`);
        assert.equal(c.ecbDecrypt(hex(v.ct)).toString('hex'), hex(v.pt).toString('hex'), `decrypt ${v.note}`);
      }
    });
  }
}

const FIPS197_PT = '00112233445566778899aabbccddeeff';
kat('aes', 'FIPS-197 Appendix C', [
  { note: 'C.1 AES-128', key: '000102030405060708090a0b0c0d0e0f', pt: FIPS197_PT, ct: '69c4e0d86a7b0430d8cdb78070b4c55a' },
  { note: 'C.2 AES-192', key: '000102030405060708090a0b0c0d0e0f1011121314151617', pt: FIPS197_PT, ct: 'dda97ca4864cdfe06eaf70a0ec0d7191' },
  { note: 'C.3 AES-256', key: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', pt: FIPS197_PT, ct: '8ea2b7ca516745bfeafc49904b496089' },
]);

// SP 800-67's plaintext hex reads "The qufck brown fox jump" (a known typo in the text); the
// hex and ciphertext are what the document publishes.
kat('des3_ede', 'NIST SP 800-67 Appendix B.1 (TDEA ECB)', [
  {
    note: 'three-key TDEA',
    key: '0123456789ABCDEF 23456789ABCDEF01 456789ABCDEF0123',
    pt: '5468652071756663 6B2062726F776E20 666F78206A756D70',
    ct: 'A826FD8CE53B855F CCE21C8112256FE6 68D5C05DD9B6B900',
  },
]);

// Schneier's vectors.txt (Eric Young's): ECB table and the variable-key "set_key" series.
const BF_ECB: [string, string, string][] = [
  ['0000000000000000', '0000000000000000', '4EF997456198DD78'],
  ['FFFFFFFFFFFFFFFF', 'FFFFFFFFFFFFFFFF', '51866FD5B85ECB8A'],
  ['3000000000000000', '1000000000000001', '7D856F9A613063F2'],
  ['1111111111111111', '1111111111111111', '2466DD878B963C9D'],
  ['0123456789ABCDEF', '1111111111111111', '61F9C3802281B096'],
  ['1111111111111111', '0123456789ABCDEF', '7D0CC630AFDA1EC7'],
  ['FEDCBA9876543210', '0123456789ABCDEF', '0ACEAB0FC6A0A28D'],
  ['7CA110454A1A6E57', '01A1D6D039776742', '59C68245EB05282B'],
  ['0131D9619DC1376E', '5CD54CA83DEF57DA', 'B1B8CC0B250F09A0'],
  ['07A1133E4A0B2686', '0248D43806F67172', '1730E5778BEA1DA4'],
  ['3849674C2602319E', '51454B582DDF440A', 'A25E7856CF2651EB'],
  ['04B915BA43FEB5B6', '42FD443059577FA2', '353882B109CE8F1A'],
  ['0113B970FD34F2CE', '059B5E0851CF143A', '48F4D0884C379918'],
  ['0170F175468FB5E6', '0756D8E0774761D2', '432193B78951FC98'],
  ['43297FAD38E373FE', '762514B829BF486A', '13F04154D69D1AE5'],
  ['07A7137045DA2A16', '3BDD119049372802', '2EEDDA93FFD39C79'],
  ['04689104C2FD3B2F', '26955F6835AF609A', 'D887E0393C2DA6E3'],
  ['37D06BB516CB7546', '164D5E404F275232', '5F99D04F5B163969'],
  ['1F08260D1AC2465E', '6B056E18759F5CCA', '4A057A3B24D3977B'],
  ['584023641ABA6176', '004BD6EF09176062', '452031C1E4FADA8E'],
  ['025816164629B007', '480D39006EE762F2', '7555AE39F59B87BD'],
  ['49793EBC79B3258F', '437540C8698F3CFA', '53C55F9CB49FC019'],
  ['4FB05E1515AB73A7', '072D43A077075292', '7A8E7BFA937E89A3'],
  ['49E95D6D4CA229BF', '02FE55778117F12A', 'CF9C5D7A4986ADB5'],
  ['018310DC409B26D6', '1D9D5C5018F728C2', 'D1ABB290658BC778'],
  ['1C587F1C13924FEF', '305532286D6F295A', '55CB3774D13EF201'],
  ['0101010101010101', '0123456789ABCDEF', 'FA34EC4847B268B2'],
  ['1F1F1F1F0E0E0E0E', '0123456789ABCDEF', 'A790795108EA3CAE'],
  ['E0FEE0FEF1FEF1FE', '0123456789ABCDEF', 'C39E072D9FAC631D'],
  ['0000000000000000', 'FFFFFFFFFFFFFFFF', '014933E0CDAFF6E4'],
  ['FFFFFFFFFFFFFFFF', '0000000000000000', 'F21E9A77B71C49BC'],
  ['0123456789ABCDEF', '0000000000000000', '245946885754369A'],
  ['FEDCBA9876543210', 'FFFFFFFFFFFFFFFF', '6B5C5A9C5D9E0A5A'],
];
kat('blowfish', "Schneier's vectors.txt ECB table", BF_ECB.map(([key, pt, ct], i) => ({ key, pt, ct, note: `row ${i + 1}` })));

// set_key series: key = the first n bytes of this string, plaintext FEDCBA9876543210. The
// series starts at n=1; Blowfish as eCryptfs and OpenSSL take it starts at 4 bytes.
const BF_SETKEY_KEY = 'F0E1D2C3B4A5968778695A4B3C2D1E0F0011223344556677';
const BF_SETKEY: string[] = [
  'BE1E639408640F05', 'B39E44481BDB1E6E', '9457AA83B1928C0D', '8BB77032F960629D', 'E87A244E2CC85E82',
  '15750E7A4F4EC577', '122BA70B3AB64AE0', '3A833C9AFFC537F6', '9409DA87A90F6BF2', '884F80625060B8B4',
  '1F85031C19E11968', '79D9373A714CA34F', '93142887EE3BE15C', '03429E838CE2D14B', 'A4299E27469FF67B',
  'AFD5AED1C1BC96A8', '10851C0E3858DA9F', 'E6F51ED79B9DB21F', '64A6E14AFD36B46F', '80C7D7D45A5479AD',
  '05044B62FA52D080',
];
kat('blowfish', "Schneier's vectors.txt variable key (4..24 bytes)", BF_SETKEY.map((ct, i) => ({
  key: BF_SETKEY_KEY.slice(0, 2 * (i + 4)), pt: 'FEDCBA9876543210', ct, note: `${i + 4}-byte key`,
})));

for (const { backend, skip } of backends('blowfish')) {
  test(`blowfish (${backend}): vectors.txt CBC chaining test`, { skip }, () => {
    const c = createBlockCipher('blowfish', hex('0123456789ABCDEFF0E1D2C3B4A59687'), { backend });
    // "7654321 Now is the time for " plus its NUL, zero-padded to 32 bytes.
    const pt = Buffer.alloc(32);
    hex('37363534333231204E6F77206973207468652074696D6520666F722000').copy(pt);
    const iv = Buffer.alloc(16);
    hex('FEDCBA9876543210').copy(iv);
    const out = Buffer.alloc(32);
    c.cbcEncryptExtents(pt, out, 32, [iv]);
    assert.equal(out.toString('hex'), '6b77b4d63006dee605b156e27403979358deb9e7154616d959f1652bd5ff92cc');
    c.cbcDecryptExtents(out, out, 32, [iv]);
    assert.deepEqual(out, pt);
  });
}

kat('cast5', 'RFC 2144 Appendix B.1', [
  { note: '128-bit key', key: '0123456712345678234567893456789A', pt: '0123456789ABCDEF', ct: '238B4FE5847E44B2' },
  { note: '80-bit key', key: '01234567123456782345', pt: '0123456789ABCDEF', ct: 'EB6A711A2C02271B' },
  { note: '40-bit key', key: '0123456712', pt: '0123456789ABCDEF', ct: '7AC816D16E9B302E' },
]);

const ZERO16 = '00000000000000000000000000000000';
kat('cast6', 'RFC 2612 Appendix A', [
  { note: '128-bit key', key: '2342bb9efa38542c0af75647f29f615d', pt: ZERO16, ct: 'c842a08972b43d20836c91d1b7530f6b' },
  { note: '192-bit key', key: '2342bb9efa38542cbed0ac83940ac298bac77a7717942863', pt: ZERO16, ct: '1b386c0210dcadcbdd0e41aa08a7a7e8' },
  { note: '256-bit key', key: '2342bb9efa38542cbed0ac83940ac2988d7c47ce264908461cc1b5137ae6b604', pt: ZERO16, ct: '4f6a2038286897b9c9870136553317fa' },
]);

kat('twofish', 'Twofish paper / ecb_tbl.txt', [
  { note: '128-bit zero key', key: ZERO16, pt: ZERO16, ct: '9F589F5CF6122C32B6BFEC2F2AE8C35A' },
  { note: 'ecb_tbl 128 I=2', key: ZERO16, pt: '9F589F5CF6122C32B6BFEC2F2AE8C35A', ct: 'D491DB16E7B1C39E86CB086B789F5419' },
  { note: '192-bit counting key', key: '0123456789ABCDEFFEDCBA98765432100011223344556677', pt: ZERO16, ct: 'CFD1D2E5A9BE9CDF501F13B892BD2248' },
  { note: 'ecb_tbl 192 I=49', key: 'FB66522C332FCC4C042ABE32FA9E902FDEA4F3DA75EC7A8E', pt: 'F0AB73301125FA21EF70BE5385FB76B6', ct: 'E75449212BEEF9F4A390BD860A640941' },
  { note: '256-bit counting key', key: '0123456789ABCDEFFEDCBA987654321000112233445566778899AABBCCDDEEFF', pt: ZERO16, ct: '37527BE0052334B89F0CFCCAE87CFA20' },
  { note: 'ecb_tbl 256 I=49', key: '248A7F3528B168ACFDD1386E3F51E30C2E2158BC3E5FC714C1EEECA0EA696D48', pt: '431058F4DBC7F734DA4F02F04CC4F459', ct: '37FE26FF1CF66175F5DDF4C33B97A205' },
]);

test('twofish: ecb_tbl.txt 128-bit chain to I=49', () => {
  // Each step: CT = E(K, PT); next K = (PT || K) cut to the key length; next PT = CT.
  let key: Buffer = Buffer.alloc(16), pt: Buffer = Buffer.alloc(16), ct: Buffer = Buffer.alloc(16);
  for (let i = 1; i <= 49; i++) {
    ct = createBlockCipher('twofish', key).ecbEncrypt(pt);
    if (i === 49) break;
    key = Buffer.concat([pt, key]).subarray(0, 16);
    pt = ct;
  }
  assert.equal(ct.toString('hex'), '5d9d4eeffa9151575524f115815a12e0');
});

test('cipherBackend reports what createBlockCipher picks', () => {
  const legacy = hasLegacyProvider();
  assert.equal(cipherBackend('aes'), 'openssl');
  assert.equal(cipherBackend('des3_ede'), 'openssl');
  assert.equal(cipherBackend('twofish'), 'js');
  assert.equal(cipherBackend('cast6'), 'js');
  assert.equal(cipherBackend('blowfish'), legacy ? 'openssl' : 'js');
  assert.equal(cipherBackend('cast5'), legacy ? 'openssl' : 'js');
  assert.equal(createBlockCipher('cast5', Buffer.alloc(16)).backend, cipherBackend('cast5'));
});

test('bad keys and lengths are refused with RangeError', () => {
  assert.throws(() => createBlockCipher('aes', Buffer.alloc(20)), RangeError);
  assert.throws(() => createBlockCipher('des3_ede', Buffer.alloc(16)), RangeError);
  assert.throws(() => createBlockCipher('blowfish', Buffer.alloc(57)), RangeError);
  assert.throws(() => createBlockCipher('cast5', Buffer.alloc(17)), RangeError);
  assert.throws(() => createBlockCipher('twofish', Buffer.alloc(20)), RangeError);
  assert.throws(() => createBlockCipher('cast6', Buffer.alloc(18)), RangeError);
  assert.throws(() => createBlockCipher('twofish', Buffer.alloc(16), { backend: 'openssl' }), /OpenSSL has no twofish/);
  for (const name of ['aes', 'twofish'] as const) {
    const c = createBlockCipher(name, Buffer.alloc(16));
    assert.throws(() => c.ecbEncrypt(Buffer.alloc(15)), RangeError);
    assert.throws(() => c.cbcEncryptExtents(Buffer.alloc(64), Buffer.alloc(64), 24, [Buffer.alloc(16)]), RangeError);
    assert.throws(() => c.cbcDecryptExtents(Buffer.alloc(32), Buffer.alloc(32), 32, [Buffer.alloc(16), Buffer.alloc(16)]), RangeError);
  }
});
