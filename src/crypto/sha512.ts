/**
 * Iterated SHA-512 (h = SHA512(h), n times over a 64-byte digest), the core of eCryptfs' key
 * derivation (65,535 rounds per passphrase). Through OpenSSL's EVP_Digest() called with koffi
 * into the OpenSSL Node itself carries (as src/crypto/evp.ts does for CBC), with the SHA-512
 * implementation fetched once (EVP_MD_fetch), ping-ponging between two buffers: no object per
 * round, and no intermediate digest left behind in the heap (the scratch is zeroed). Measured on
 * this VM, CPU of 65,535 rounds: ~18 ms; ~30 ms through the one-shot SHA512(), which in OpenSSL 3
 * looks the algorithm up by name at every call; ~66 ms with node:crypto's one-shot hash. Checked
 * against node:crypto once per process; without koffi, the symbols, or on a mismatch (or
 * ECRYPTFS_FFI_CRYPTO=0) node:crypto does it.
 */
import * as crypto from 'node:crypto';
import { bindNodeOpenssl } from './openssl.js';

type Sha512Fn = (d: Uint8Array, n: number, md: Uint8Array) => unknown;

let ffi: Sha512Fn | null | undefined;

const oneShot = (crypto as { hash?: (alg: string, data: Buffer, enc: 'buffer') => Buffer }).hash;
const nodeSha512 = (b: Buffer): Buffer => (oneShot ? oneShot('sha512', b, 'buffer') : crypto.createHash('sha512').update(b).digest());

type Fetch = (libctx: null, algorithm: string, properties: null) => unknown;
type Digest = (d: Uint8Array, n: number, md: Uint8Array, size: null, type: unknown, impl: null) => number;

function bind(): Sha512Fn | null {
  if (ffi !== undefined) return ffi;
  ffi = bindNodeOpenssl<Fetch & Digest, Sha512Fn>((func) => {
    const fetch: Fetch = func('void *EVP_MD_fetch(void *libctx, const char *algorithm, const char *properties)');
    const digest: Digest = func('int EVP_Digest(const uint8_t *d, size_t n, uint8_t *md, unsigned int *size, void *type, void *impl)');
    // Kept for the process (a few hundred bytes): every derivation uses it.
    const md = fetch(null, 'SHA512', null);
    if (!md) return null;
    const f: Sha512Fn = (d, n, out) => digest(d, n, out, null, md, null);
    const probe = crypto.randomBytes(64);
    const out = Buffer.alloc(64);
    return f(probe, 64, out) === 1 && out.equals(nodeSha512(probe)) ? f : null;
  });
  return ffi;
}

/** Which implementation sha512Rounds uses here: OpenSSL through koffi, or the node:crypto fallback. */
export const sha512Backend = (): 'openssl' | 'node:crypto' => (bind() ? 'openssl' : 'node:crypto');

/** SHA-512 applied `n` times to the 64-byte digest `h` (h itself is not changed). */
export function sha512Rounds(h: Buffer, n: number): Buffer {
  if (h.length !== 64) throw new RangeError(`sha512Rounds takes a 64-byte digest, not ${h.length} bytes`);
  const f = bind();
  if (!f) {
    let x: Buffer = Buffer.from(h);
    for (let i = 0; i < n; i++) x = nodeSha512(x);
    return x;
  }
  let a = Buffer.from(h);
  let b = Buffer.alloc(64);
  for (let i = 0; i < n; i++) {
    f(a, 64, b);
    const t = a;
    a = b;
    b = t;
  }
  b.fill(0);
  return a;
}
