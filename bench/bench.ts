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
import { existsSync } from 'node:fs';
import { cpus, release } from 'node:os';
import { fuseLatency } from './fuselat.js';
import { formatLibraryBench, libraryBench } from './library.js';
import { compareTable, formatTable, hasGocryptfs, parallelOnly, scaleChecks } from './mountbench.js';

const MiB = 1 << 20;
const SIZE = Number(process.env.BENCH_MB ?? 256) * MiB;

const only = (process.env.BENCH_ONLY ?? 'fuse,table,scale,crypto').split(',');
const log = (line: string) => process.stderr.write(`${line}\n`);

/** Section 4, the crypto library against OpenSSL (owned by the crypto work: bench/library.ts). */
async function cryptoSection(): Promise<void> {
  const r = await libraryBench({ sizeMiB: SIZE / MiB, rounds: Number(process.env.BENCH_ROUNDS ?? 3) });
  console.log(formatLibraryBench(r));
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
    // Whether more processes bring more throughput depends on the lower device too: the same
    // step for gocryptfs on disk, and for both with the lower directory on tmpfs.
    console.log('\n## Several processes at once, beside gocryptfs and on tmpfs\n');
    for (const [k, where, parent] of [['gocryptfs', 'disk', '/var/tmp'], ['ecryptfs-ts', 'tmpfs', '/dev/shm'], ['gocryptfs', 'tmpfs', '/dev/shm']] as const) {
      if ((k === 'gocryptfs' && !hasGocryptfs()) || !existsSync(parent)) continue;
      console.log(`- ${k}, lower on ${where}: ${await parallelOnly(k, parent)}`);
    }
  }
  if (!root) console.log('\n(mount sections skipped: they need root)');
  if (only.includes('crypto')) {
    console.log('\n## Library vs OpenSSL (openssl speed on one core; medians of interleaved rounds)\n');
    await cryptoSection();
  }
}

await main();
