/**
 * npm run bench: throughput of the library against raw OpenSSL measured in the same run.
 * Prints a table; performance claims of the README come from here, never from timed tests.
 */
import { execFileSync } from 'node:child_process';
import { promises as fsp, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { KeyRing } from '../src/volume/keyring.js';
import { Volume } from '../src/volume/volume.js';
import { mountBench } from './mountbench.js';

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

async function main(): Promise<void> {
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
    if (process.getuid?.() === 0 && !process.env.BENCH_NO_MOUNT) {
      console.log('');
      console.log(`Mounts (${SIZE / MiB} MiB sequential, 2000 files of 1000 bytes, 2000 random 4 KiB reads; caches dropped before reads):`);
      const mrows = [['where: filesystem', 'seq write MB/s', 'seq read MB/s', 'small files/s', '4K rand reads/s'], ...mountBench(SIZE / MiB)];
      const mw = mrows[0].map((_, i) => Math.max(...mrows.map((r) => r[i].length)));
      for (const r of mrows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(mw[i]) : c.padStart(mw[i]))).join('  '));
      console.log('(ratios in parentheses: ecryptfs-ts / gocryptfs; targets >= 1.2x sequential, >= 1.0x small files)');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
