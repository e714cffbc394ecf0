/**
 * Library speed against `openssl speed` in the same run (issue #11): OpenSSL AES-128-CBC on one
 * core at 4 KiB and 16 KiB blocks, the library writing (encrypting) and reading (decrypting) a
 * file through the Volume API, and the extent-crypto path large transfers use, with 1 and 2 cores.
 *
 * `libraryBench()` returns the numbers, `formatLibraryBench()` the table; run this file directly
 * (`node --openssl-legacy-provider dist/bench/library.js`, BENCH_MB=256 by default) to print it.
 * Lower directory: /dev/shm when present (memory), so the disk does not set the speed.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ContentCipher } from '../src/format/contentenc.js';
import { setCryptoWorkers, sharedBuffer } from '../src/crypto/pool.js';
import { KeyRing } from '../src/volume/keyring.js';
import { Volume } from '../src/volume/volume.js';

const MiB = 1 << 20;

export interface LibraryBenchResult {
  /** MB/s (10^6 bytes/s), `openssl speed -evp aes-128-cbc`, one core, keyed by block bytes. */
  opensslEncrypt: Record<number, number>;
  opensslDecrypt: Record<number, number>;
  /** Volume API, aes-128, file of `sizeMiB` on `lowerDir`. */
  libraryEncrypt: number;
  libraryDecrypt: number;
  /** Extent crypto of 1 MiB transfers (what a large mount read/write uses), by cores used. */
  parallel: { cores: number; encrypt: number; decrypt: number }[];
  sizeMiB: number;
  lowerDir: string;
  peakRssMiB: number;
}

/** `openssl speed -evp aes-128-cbc` at one block size, one core (no -multi); MB/s. */
export function opensslSpeed(decrypt: boolean, bytes: number, seconds = 2): number {
  const args = ['speed', '-elapsed', '-seconds', String(seconds), '-bytes', String(bytes), '-evp', 'aes-128-cbc'];
  if (decrypt) args.splice(1, 0, '-decrypt');
  const out = execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const row = out.split('\n').find((l) => /^aes-128-cbc\s/i.test(l));
  if (!row) throw new Error(`cannot parse openssl speed output:\n${out}`);
  const kb = parseFloat(row.trim().split(/\s+/).pop()!.replace(/k$/, ''));
  return (kb * 1000) / 1e6; // openssl's k is 1000 bytes
}

function seconds(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function volumeBench(dir: string, size: number): Promise<{ enc: number; dec: number }> {
  const ring = new KeyRing();
  await ring.addPassphrase('bench-passphrase');
  const vol = await Volume.open(dir, ring, { fnekSig: null });
  try {
    const chunk = randomBytes(MiB);
    async function* gen(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < size / MiB; i++) yield chunk;
    }
    let t = process.hrtime.bigint();
    await vol.writeFile('big', gen());
    const enc = size / 1e6 / seconds(t);
    // One reused buffer, as `ecryptfs decrypt` reads.
    t = process.hrtime.bigint();
    const f = await vol.openFile('big');
    const buf = Buffer.alloc(MiB);
    let n = 0;
    try {
      for (let got; (got = await f.readInto(buf, n)) > 0; ) n += got;
    } finally {
      await f.close();
    }
    const dec = size / 1e6 / seconds(t);
    if (n !== size) throw new Error(`short read: ${n} of ${size} bytes`);
    return { enc, dec };
  } finally {
    vol.close();
  }
}

/**
 * Extent crypto alone, as a large mount transfer does it (FUSE moves at most 1 MiB a request):
 * encrypt in place in shared memory, decrypt from shared memory into a plain buffer, with
 * `workers` extra threads (cores = workers + 1).
 */
async function extentBench(workers: number, totalMiB: number): Promise<{ encrypt: number; decrypt: number }> {
  setCryptoWorkers(workers);
  try {
    const cc = new ContentCipher('aes', randomBytes(16));
    const es = cc.extentSize;
    const count = MiB / es;
    const shared = sharedBuffer(MiB);
    shared.set(randomBytes(MiB));
    const out = Buffer.alloc(MiB);
    await cc.encryptInPlace(shared, 0, count); // warm up: threads started, code compiled
    await cc.decryptFrom(shared, out, 0, count);
    let t = process.hrtime.bigint();
    for (let r = 0; r < totalMiB; r++) await cc.encryptInPlace(shared, r * count, count);
    const encrypt = (totalMiB * MiB) / 1e6 / seconds(t);
    t = process.hrtime.bigint();
    for (let r = 0; r < totalMiB; r++) await cc.decryptFrom(shared, out, r * count, count);
    const decrypt = (totalMiB * MiB) / 1e6 / seconds(t);
    cc.destroy();
    return { encrypt, decrypt };
  } finally {
    setCryptoWorkers(undefined);
  }
}

export async function libraryBench(opts: { sizeMiB?: number; lowerBase?: string } = {}): Promise<LibraryBenchResult> {
  const sizeMiB = opts.sizeMiB ?? 256;
  const base = opts.lowerBase ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
  const opensslEncrypt: Record<number, number> = {};
  const opensslDecrypt: Record<number, number> = {};
  for (const bytes of [4096, 16384]) {
    opensslEncrypt[bytes] = opensslSpeed(false, bytes);
    opensslDecrypt[bytes] = opensslSpeed(true, bytes);
  }
  const dir = mkdtempSync(join(base, 'ecryptfs-libbench-'));
  let vol: { enc: number; dec: number };
  try {
    vol = await volumeBench(dir, sizeMiB * MiB);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const parallel = [];
  for (const workers of [0, 1]) parallel.push({ cores: workers + 1, ...(await extentBench(workers, Math.min(sizeMiB, 256))) });
  return {
    opensslEncrypt,
    opensslDecrypt,
    libraryEncrypt: vol.enc,
    libraryDecrypt: vol.dec,
    parallel,
    sizeMiB,
    lowerDir: base,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
}

export function formatLibraryBench(r: LibraryBenchResult): string {
  const oe = r.opensslEncrypt[16384], od = r.opensslDecrypt[16384];
  const rows: string[][] = [['what', 'MB/s', 'vs OpenSSL 16 KiB', 'target']];
  for (const b of [4096, 16384]) {
    rows.push([`openssl speed aes-128-cbc encrypt, ${b} B blocks, 1 core`, r.opensslEncrypt[b].toFixed(0), (r.opensslEncrypt[b] / oe).toFixed(2), '']);
    rows.push([`openssl speed aes-128-cbc decrypt, ${b} B blocks, 1 core`, r.opensslDecrypt[b].toFixed(0), (r.opensslDecrypt[b] / od).toFixed(2), '']);
  }
  rows.push([`library encrypt (write) ${r.sizeMiB} MiB, aes-128`, r.libraryEncrypt.toFixed(0), (r.libraryEncrypt / oe).toFixed(2), '>= 0.80']);
  rows.push([`library decrypt (read) ${r.sizeMiB} MiB, aes-128`, r.libraryDecrypt.toFixed(0), (r.libraryDecrypt / od).toFixed(2), '>= 0.50']);
  for (const p of r.parallel) {
    rows.push([`extent crypto, 1 MiB transfers, ${p.cores} core${p.cores > 1 ? 's' : ''}: encrypt`, p.encrypt.toFixed(0), (p.encrypt / oe).toFixed(2), '']);
    rows.push([`extent crypto, 1 MiB transfers, ${p.cores} core${p.cores > 1 ? 's' : ''}: decrypt`, p.decrypt.toFixed(0), (p.decrypt / od).toFixed(2), '']);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const lines = rows.map((row) => row.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  '));
  lines.push(`lower directory on ${r.lowerDir}; peak RSS ${r.peakRssMiB.toFixed(0)} MiB`);
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await libraryBench({ sizeMiB: Number(process.env.BENCH_MB ?? 256) });
  console.log(formatLibraryBench(r));
}
