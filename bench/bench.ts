/**
 * npm run bench (root, not part of npm test): in one run
 *  1. the FUSE server's round trip on the in-memory test filesystem (bench/fuselat.ts);
 *  2. issue #11's table: plain directory, gocryptfs and ecryptfs-ts side by side with ratios,
 *     lower directory on disk and on tmpfs (bench/mountbench.ts);
 *  3. the scale checks (100,000 files in one directory, a 4 GiB file, 8 processes, daemon RSS);
 *  4. the library against `openssl speed` on one core (the crypto section).
 * Performance claims of the README come from here, never from timed tests. Quick run:
 *   BENCH_SEQ_MB=64 BENCH_FILES=500 BENCH_ROUNDS=1 BENCH_SCALE_FILES=5000 BENCH_BIG_MB=256 npm run bench
 * BENCH_ONLY=fuse,table,scale,crypto picks sections.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fsp, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { KeyRing } from '../src/volume/keyring.js';
import { Volume } from '../src/volume/volume.js';
import { cpus, release } from 'node:os';
import { fuseLatency } from './fuselat.js';
import { compareTable, formatTable, scaleChecks } from './mountbench.js';

const MiB = 1 << 20;
const SIZE = Number(process.env.BENCH_MB ?? 256) * MiB;

function opensslSpeed(decrypt: boolean): number {
  // -evp aes-128-cbc at 16 KiB blocks, one core; the last column of the result row is KB/s at 16384.
  const args = ['speed', '-elapsed', '-seconds', '2', '-bytes', '16384', '-evp', 'aes-128-cbc'];
  if (decrypt) args.splice(1, 0, '-decrypt');
  const out = execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const row = out.split('\n').find((l) => l.startsWith('AES-128-CBC') || l.startsWith('aes-128-cbc'));
  if (!row) throw new Error(`cannot parse openssl speed output:\n${out}`);
  const kb = parseFloat(row.trim().split(/\s+/).pop()!.replace(/k$/, ''));
  return (kb * 1000) / 1e6; // MB/s (openssl's k = 1000 bytes)
}

async function timeIt(fn: () => Promise<void>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

async function libraryBench(dir: string): Promise<{ enc: number; dec: number }> {
  const ring = new KeyRing();
  await ring.addPassphrase('bench-passphrase');
  const vol = await Volume.open(dir, ring, { fnekSig: null });
  const chunk = Buffer.alloc(MiB, 0x5a);
  async function* gen() {
    for (let i = 0; i < SIZE / MiB; i++) yield chunk;
  }
  const encS = await timeIt(() => vol.writeFile('big', gen()));
  // Read with one reused buffer, as `ecryptfs decrypt` does (a stream allocates a chunk per read).
  let n = 0;
  const decS = await timeIt(async () => {
    const f = await vol.openFile('big');
    const buf = Buffer.alloc(MiB);
    for (let got; (got = await f.readInto(buf, n)) > 0; ) n += got;
    await f.close();
  });
  if (n !== SIZE) throw new Error('short read');
  vol.close();
  return { enc: SIZE / 1e6 / encS, dec: SIZE / 1e6 / decS };
}

const only = (process.env.BENCH_ONLY ?? 'fuse,table,scale,crypto').split(',');
const log = (line: string) => process.stderr.write(`${line}\n`);

/** Section 4, the crypto library against OpenSSL (owned by the crypto work; kept apart). */
async function cryptoSection(): Promise<void> {
  const base = (await fsp.stat('/dev/shm').then(() => '/dev/shm', () => undefined)) ?? process.env.TMPDIR ?? '/tmp';
  const dir = mkdtempSync(join(base, 'ecryptfs-bench-'));
  try {
    const osslEnc = opensslSpeed(false);
    const osslDec = opensslSpeed(true);
    const lib = await libraryBench(dir);
    const rss = process.resourceUsage().maxRSS / 1024;
    const rows = [
      ['what', 'MB/s', 'vs OpenSSL 1 core', 'target'],
      ['openssl speed aes-128-cbc encrypt (16 KiB, 1 core)', osslEnc.toFixed(0), '1.00', ''],
      ['openssl speed aes-128-cbc decrypt (16 KiB, 1 core)', osslDec.toFixed(0), '1.00', ''],
      [`library encrypt ${SIZE / MiB} MiB (write, aes-128)`, lib.enc.toFixed(0), (lib.enc / osslEnc).toFixed(2), '>= 0.80'],
      [`library decrypt ${SIZE / MiB} MiB (read, aes-128)`, lib.dec.toFixed(0), (lib.dec / osslDec).toFixed(2), '>= 0.50'],
    ];
    const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    for (const r of rows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  '));
    console.log(`peak RSS: ${rss.toFixed(0)} MiB (lower dir on ${base})`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const root = process.getuid?.() === 0;
  console.log(`# ecryptfs-ts benchmark, ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`);
  console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model.trim()}), Linux ${release()}, Node ${process.version}`);
  if (root && only.includes('fuse')) {
    console.log('\n## FUSE server round trip (test/fuse/memfs, timeouts 0; microseconds per call)\n');
    const r = await fuseLatency(5000, 3000);
    for (const [k, v] of Object.entries(r)) console.log(`${k.padEnd(34)} ${v.toFixed(k.endsWith(' s') ? 3 : 1)}`);
  }
  if (root && only.includes('table')) {
    const where = (process.env.BENCH_WHERE ?? 'disk,tmpfs').split(',');
    for (const [name, parent] of [['disk', '/var/tmp'], ['tmpfs', '/dev/shm']] as const) {
      if (!where.includes(name) || !existsSync(parent)) continue;
      console.log(`\n## Lower directory on ${name} (${parent}); medians of ${process.env.BENCH_ROUNDS ?? 3} interleaved rounds; ratio = ecryptfs-ts / gocryptfs\n`);
      console.log(formatTable(await compareTable(name, parent, log)));
    }
  }
  if (root && only.includes('scale')) {
    console.log('\n## Scale (lower directory on disk)\n');
    const kinds = process.env.BENCH_SCALE_GOCRYPTFS === '1' ? (['gocryptfs', 'ecryptfs-ts'] as const) : (['ecryptfs-ts'] as const);
    for (const k of kinds) {
      for (const row of await scaleChecks(k, '/var/tmp', log)) console.log(`- ${k}: ${row.what}: ${row.value}`);
    }
  }
  if (!root) console.log('\n(mount sections skipped: they need root)');
  if (only.includes('crypto')) {
    console.log('\n## Library vs OpenSSL, one core\n');
    await cryptoSection();
  }
}

await main();
