/**
 * The OpenSSL that Node itself carries, through koffi (`dlopen(NULL)`: Node's own symbols, or the
 * libcrypto it is linked against). Shared by the FFI paths (evp.ts, sha512.ts, aesmb.ts), each of
 * which binds its own functions and checks them against node:crypto.
 */
import { createRequire } from 'node:module';

export interface NodeOpenssl {
  func(sig: string): (...args: never[]) => unknown;
}

/** The parts of koffi the crypto paths use. */
export interface Koffi {
  load(path: string | null): NodeOpenssl;
  /** Where a buffer's bytes are (they must not move: not a small typed array on V8's heap). */
  address(b: Uint8Array): bigint;
}

/** koffi, or null when ECRYPTFS_FFI_CRYPTO=0 or it cannot be loaded. */
export function loadKoffi(): Koffi | null {
  if (process.env.ECRYPTFS_FFI_CRYPTO === '0') return null;
  try {
    return createRequire(import.meta.url)('koffi') as Koffi;
  } catch {
    return null;
  }
}

/**
 * `make` run over Node's OpenSSL (`func` binds one C function by its signature): what it returns,
 * or null when there is no OpenSSL to call (ECRYPTFS_FFI_CRYPTO=0, koffi cannot load it) or `make`
 * throws (a symbol missing, a failed check).
 */
export function bindNodeOpenssl<F, T>(make: (func: (sig: string) => F) => T | null): T | null {
  const koffi = loadKoffi();
  if (!koffi) return null;
  try {
    const lib = koffi.load(null);
    return make((sig) => lib.func(sig) as F);
  } catch {
    return null;
  }
}
