/**
 * Library speed against `openssl speed` in the same run (issue #11): OpenSSL AES-128-CBC on one
 * core at 4 KiB and 16 KiB blocks, the library writing (encrypting) and reading (decrypting) a
 * file through the Volume API, and the extent crypto a large mount transfer uses, on 1 and 2 cores.
 *
 * `libraryBench()` returns the numbers, `formatLibraryBench()` the table (bench/bench.ts's crypto
 * section can print it); run this file directly to print it:
 *   node --openssl-legacy-provider dist/bench/library.js   (BENCH_MB=256, BENCH_ROUNDS=3)
 * OpenSSL and the library are measured in interleaved rounds and the medians reported, so a
 * shared machine's load falls on both. Beside wall-clock MB/s the table gives MB per CPU-second
 * (openssl speed without -elapsed counts CPU time; the library's is its process CPU time, all
 * threads): on a loaded machine that column still compares the work done, not the share of CPU got.
 * Lower directory: /dev/shm when present (memory), so no disk sets the speed.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FileCrypto } from '../src/volume/filecrypto.js';
import { cryptoPool, setCryptoWorkers, sharedBuffer } from '../src/crypto/pool.js';
import { KeyRing } from '../src/volume/keyring.js';
import { Volume } from '../src/volume/volume.js';

const MiB = 1 << 20;

/** One measurement: wall-clock MB/s and MB per CPU-second. */
export interface Speed { wall: number; cpu: number }

export interface LibraryBenchResult {
  /** `openssl speed -evp aes-128-cbc`, one core, keyed by block bytes (wall: -elapsed; cpu: without). */
  opensslEncrypt: Record<number, Speed>;
  opensslDecrypt: Record<number, Speed>;
  /** Volume API, aes-128, a file of `sizeMiB` on `lowerDir`, crypto threads as by default. */
  libraryEncrypt: Speed;
  libraryDecrypt: Speed;
  /** The same on the calling thread alone (no crypto threads): the per-CPU comparison. */
  libraryEncrypt1: Speed;
  libraryDecrypt1: Speed;
  /** The same file size written and read with plain fs calls, 1 MiB at a time: the I/O ceiling. */
  plainWrite: Speed;
  plainRead: Speed;
  /** Crypto threads the Volume's large reads and writes used besides the calling thread. */
  workers: number;
  /** Share of the large batches the pool spread over its threads (CryptoPool.pays), with the default threads. */
  spread: number;
  /** Extent crypto of 1 MiB transfers (what a large mount read/write does), by cores used. */
  parallel: { cores: number; encrypt: Speed; decrypt: Speed; spread: number }[];
  sizeMiB: number;
  rounds: number;
  lowerDir: string;
  peakRssMiB: number;
}

/** `openssl speed -evp aes-128-cbc` at one block size, one core (no -multi); MB/s (10^6 bytes). */
export function opensslSpeed(decrypt: boolean, bytes: number, elapsed: boolean, seconds = 1): number {
  const args = ['speed', '-seconds', String(seconds), '-bytes', String(bytes), '-evp', 'aes-128-cbc'];
  if (elapsed) args.splice(1, 0, '-elapsed');
  if (decrypt) args.splice(1, 0, '-decrypt');
  const out = execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const row = out.split('\n').find((l) => /^aes-128-cbc\s/i.test(l));
  if (!row) throw new Error(`cannot parse openssl speed output:\n${out}`);
  const kb = parseFloat(row.trim().split(/\s+/).pop()!.replace(/k$/, ''));
  return (kb * 1000) / 1e6; // openssl's k is 1000 bytes
}

/** Time `fn` moving `bytes`: wall-clock and process CPU (all threads). */
async function measure(bytes: number, fn: () => Promise<void>): Promise<Speed> {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await fn();
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(c0);
  return { wall: bytes / 1e6 / wall, cpu: bytes / 1e6 / ((c.user + c.system) / 1e6) };
}

async function volumeRound(vol: Volume, size: number, chunk: Buffer): Promise<{ enc: Speed; dec: Speed }> {
  async function* gen(): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < size / MiB; i++) yield chunk;
  }
  // A new file each time, as the plain write below: replacing the last round's file would first
  // free its pages (~100 us per MiB on tmpfs, measured), the kernel's work, not the encryption's.
  await vol.unlink('big').catch(() => undefined);
  const enc = await measure(size, () => vol.writeFile('big', gen()));
  // One reused buffer, as `ecryptfs decrypt` reads.
  const dec = await measure(size, async () => {
    const f = await vol.openFile('big');
    const buf = Buffer.alloc(MiB);
    let n = 0;
    try {
      for (let got; (got = await f.readInto(buf, n)) > 0; ) n += got;
    } finally {
      await f.close();
    }
    if (n !== size) throw new Error(`short read: ${n} of ${size} bytes`);
  });
  return { enc, dec };
}

/** The I/O alone: a plain file of the same size written and read back in 1 MiB calls. */
async function plainRound(dir: string, size: number, chunk: Buffer): Promise<{ w: Speed; r: Speed }> {
  const path = join(dir, 'plain');
  rmSync(path, { force: true });
  const w = await measure(size, async () => {
    const fd = openSync(path, 'w');
    for (let o = 0; o < size; o += MiB) writeSync(fd, chunk, 0, MiB, o);
    closeSync(fd);
  });
  const buf = Buffer.alloc(MiB);
  const r = await measure(size, async () => {
    const fd = openSync(path, 'r');
    for (let o = 0; o < size; o += MiB) readSync(fd, buf, 0, MiB, o);
    closeSync(fd);
  });
  rmSync(path, { force: true });
  return { w, r };
}

/**
 * Extent crypto alone, as a large mount transfer does it (FUSE moves at most 1 MiB a request):
 * encrypt in place in shared memory, decrypt from shared memory into a plain buffer, with
 * `workers` extra threads (cores = workers + 1).
 */
async function extentRound(workers: number, totalMiB: number): Promise<{ encrypt: Speed; decrypt: Speed; spread: Tally }> {
  setCryptoWorkers(workers);
  try {
    const cc = new FileCrypto('aes', randomBytes(16));
    const count = MiB / cc.extentSize;
    const shared = sharedBuffer(MiB);
    shared.set(randomBytes(MiB));
    const out = Buffer.alloc(MiB);
    await cc.encryptInPlace(shared, 0, count); // warm up: threads started, code compiled
    await cc.decryptFrom(shared, out, 0, count);
    const t0 = { ...cryptoPool().tally };
    const encrypt = await measure(totalMiB * MiB, async () => {
      for (let r = 0; r < totalMiB; r++) await cc.encryptInPlace(shared, r * count, count);
    });
    const decrypt = await measure(totalMiB * MiB, async () => {
      for (let r = 0; r < totalMiB; r++) await cc.decryptFrom(shared, out, r * count, count);
    });
    cc.destroy();
    return { encrypt, decrypt, spread: since(t0) };
  } finally {
    setCryptoWorkers(undefined);
  }
}

/** Start the pool's threads outside the measured time (they start on their first job). */
async function warmPool(): Promise<void> {
  const fc = new FileCrypto('aes', randomBytes(16));
  await fc.encryptInPlace(sharedBuffer(256 * fc.extentSize), 0, 256);
  fc.destroy();
}

type Tally = { spread: number; local: number };

/** Large batches the pool spread and kept since `t0` (a snapshot of cryptoPool().tally). */
function since(t0: Tally): Tally {
  const t = cryptoPool().tally;
  return { spread: t.spread - t0.spread, local: t.local - t0.local };
}

function share(ts: Tally[]): number {
  const s = ts.reduce((a, t) => a + t.spread, 0), l = ts.reduce((a, t) => a + t.local, 0);
  return s + l === 0 ? 0 : s / (s + l);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function medianSpeed(xs: Speed[]): Speed {
  return { wall: median(xs.map((x) => x.wall)), cpu: median(xs.map((x) => x.cpu)) };
}

export async function libraryBench(opts: { sizeMiB?: number; rounds?: number; lowerBase?: string } = {}): Promise<LibraryBenchResult> {
  const sizeMiB = opts.sizeMiB ?? 256;
  const rounds = opts.rounds ?? 3;
  const base = opts.lowerBase ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
  const blocks = [4096, 16384];
  const ossl = { enc: new Map<number, Speed[]>(), dec: new Map<number, Speed[]>() };
  const lib = { enc: [] as Speed[], dec: [] as Speed[], enc1: [] as Speed[], dec1: [] as Speed[] };
  const plain = { w: [] as Speed[], r: [] as Speed[] };
  const par = new Map<number, { encrypt: Speed[]; decrypt: Speed[]; spread: Tally[] }>();
  const spread: Tally[] = [];
  const dir = mkdtempSync(join(base, 'ecryptfs-libbench-'));
  try {
    const ring = new KeyRing();
    await ring.addPassphrase('bench-passphrase');
    const vol = await Volume.open(dir, ring, { fnekSig: null });
    const chunk = randomBytes(MiB);
    try {
      for (let r = 0; r < rounds; r++) {
        for (const b of blocks) {
          for (const [decrypt, m] of [[false, ossl.enc], [true, ossl.dec]] as const) {
            const s = { wall: opensslSpeed(decrypt, b, true), cpu: opensslSpeed(decrypt, b, false) };
            m.set(b, [...(m.get(b) ?? []), s]);
          }
        }
        setCryptoWorkers(0);
        const v1 = await volumeRound(vol, sizeMiB * MiB, chunk);
        lib.enc1.push(v1.enc);
        lib.dec1.push(v1.dec);
        setCryptoWorkers(undefined);
        await warmPool();
        const t0 = { ...cryptoPool().tally };
        const v = await volumeRound(vol, sizeMiB * MiB, chunk);
        spread.push(since(t0));
        lib.enc.push(v.enc);
        lib.dec.push(v.dec);
        const p = await plainRound(dir, sizeMiB * MiB, chunk);
        plain.w.push(p.w);
        plain.r.push(p.r);
        for (const workers of [0, 1]) {
          const x = await extentRound(workers, Math.min(sizeMiB, 128));
          const p = par.get(workers) ?? { encrypt: [], decrypt: [], spread: [] };
          p.encrypt.push(x.encrypt);
          p.decrypt.push(x.decrypt);
          p.spread.push(x.spread);
          par.set(workers, p);
        }
      }
    } finally {
      vol.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const pick = (m: Map<number, Speed[]>) => Object.fromEntries(blocks.map((b) => [b, medianSpeed(m.get(b)!)]));
  return {
    opensslEncrypt: pick(ossl.enc),
    opensslDecrypt: pick(ossl.dec),
    libraryEncrypt: medianSpeed(lib.enc),
    libraryDecrypt: medianSpeed(lib.dec),
    libraryEncrypt1: medianSpeed(lib.enc1),
    libraryDecrypt1: medianSpeed(lib.dec1),
    plainWrite: medianSpeed(plain.w),
    plainRead: medianSpeed(plain.r),
    workers: cryptoPool().size,
    spread: share(spread),
    parallel: [...par].map(([w, p]) => ({ cores: w + 1, encrypt: medianSpeed(p.encrypt), decrypt: medianSpeed(p.decrypt), spread: share(p.spread) })),
    sizeMiB,
    rounds,
    lowerDir: base,
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
  };
}

export function formatLibraryBench(r: LibraryBenchResult): string {
  const oe = r.opensslEncrypt[16384], od = r.opensslDecrypt[16384];
  const rows: string[][] = [['what', 'MB/s', 'x OpenSSL', 'MB/cpu-s', 'x OpenSSL', 'target']];
  const row = (what: string, s: Speed, ref: Speed, target = '') =>
    rows.push([what, s.wall.toFixed(0), (s.wall / ref.wall).toFixed(2), s.cpu.toFixed(0), (s.cpu / ref.cpu).toFixed(2), target]);
  for (const b of [4096, 16384]) {
    row(`openssl speed aes-128-cbc encrypt, ${b} B blocks, 1 core`, r.opensslEncrypt[b], oe);
    row(`openssl speed aes-128-cbc decrypt, ${b} B blocks, 1 core`, r.opensslDecrypt[b], od);
  }
  // Large reads and writes spread over the crypto pool (while that pays: see CryptoPool.pays).
  const pct = (x: number) => `${(100 * x).toFixed(0)}% spread`;
  const cores = `${r.workers + 1} core${r.workers ? `s, ${pct(r.spread)}` : ''}`;
  row(`library encrypt (write) ${r.sizeMiB} MiB, aes-128, ${cores}`, r.libraryEncrypt, oe, '>= 0.80');
  row(`library decrypt (read) ${r.sizeMiB} MiB, aes-128, ${cores}`, r.libraryDecrypt, od, '>= 0.50');
  row(`library encrypt (write) ${r.sizeMiB} MiB, aes-128, 1 core`, r.libraryEncrypt1, oe);
  row(`library decrypt (read) ${r.sizeMiB} MiB, aes-128, 1 core`, r.libraryDecrypt1, od);
  row(`plain write of the same file, no crypto (I/O ceiling)`, r.plainWrite, oe);
  row(`plain read of the same file, no crypto (I/O ceiling)`, r.plainRead, od);
  for (const p of r.parallel) {
    const c = `${p.cores} core${p.cores > 1 ? `s, ${pct(p.spread)}` : ''}`;
    row(`extent crypto, 1 MiB transfers, ${c}: encrypt`, p.encrypt, oe);
    row(`extent crypto, 1 MiB transfers, ${c}: decrypt`, p.decrypt, od);
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((x) => x[i].length)));
  const lines = rows.map((x) => x.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  '));
  lines.push(`(x OpenSSL: against openssl speed at 16 KiB blocks; medians of ${r.rounds} interleaved rounds;`);
  lines.push(` lower directory on ${r.lowerDir}; peak RSS ${r.peakRssMiB.toFixed(0)} MiB)`);
  return lines.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await libraryBench({ sizeMiB: Number(process.env.BENCH_MB ?? 256), rounds: Number(process.env.BENCH_ROUNDS ?? 3) });
  console.log(formatLibraryBench(r));
}
