/**
 * Mount benchmarks (issue #11): ecryptfs-ts through FUSE vs gocryptfs vs the plain lower
 * directory, in the same run, with the lower directory on disk and on tmpfs. Each round mounts
 * every filesystem afresh (that is the mount time) and runs the workloads on it; rounds are
 * interleaved and the table shows medians. Caches are dropped before every cold step.
 *
 * Sizes (env): BENCH_SEQ_MB (512), BENCH_RAND_READS (2000), BENCH_FILES (3000), BENCH_ROUNDS (3),
 * BENCH_WHERE (disk,tmpfs). Scale checks: BENCH_SCALE_FILES (100000), BENCH_BIG_MB (4096),
 * BENCH_PAR (8), BENCH_PAR_MB (128), BENCH_PAR_ROUNDS (3), BENCH_NO_SCALE=1 skips them.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readMountState } from '../src/mount/state.js';

// The installed `ecryptfs` command (bin/): as root it forks the mount daemon before loading its own modules.
const CLI = fileURLToPath(new URL('../../bin/ecryptfs.js', import.meta.url));
const env = (k: string, d: number) => Number(process.env[k] ?? d);

export interface FsUnderTest {
  name: string;
  dir: string;
  /** Seconds from starting the mount command to the first answered stat; 0 for the plain dir. */
  mountS: number;
  /** The serving process (for its peak RSS), if any. */
  pid?: number;
  stop(): void;
}

interface Kind {
  name: string;
  /** Prepare `base` once (init the cipher dir), then mount it (per round). */
  init(base: string): void;
  mount(base: string): FsUnderTest | Promise<FsUnderTest>;
}

function sh(cmd: string): void {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
}

export function dropCaches(): void {
  spawnSync('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches'], { stdio: 'ignore' });
}

function seconds(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

function timedMount(fn: () => void, dir: string): number {
  return seconds(() => {
    fn();
    lstatSync(join(dir, '.'));
    readdirSync(dir);
  });
}

const plain: Kind = {
  name: 'plain',
  init: (base) => mkdirSync(join(base, 'plain')),
  mount: (base) => ({ name: 'plain', dir: join(base, 'plain'), mountS: 0, stop: () => undefined }),
};

const ECRYPTFS_OPTS = 'ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y,no_sig_cache';

const ecryptfs: Kind = {
  name: 'ecryptfs-ts',
  init: (base) => {
    mkdirSync(join(base, 'ecryptfs-lower'));
    mkdirSync(join(base, 'ecryptfs-upper'));
    writeFileSync(join(base, 'pw'), 'passphrase_passwd=bench-pass\n', { mode: 0o600 });
  },
  mount: async (base) => {
    const lower = join(base, 'ecryptfs-lower');
    const upper = join(base, 'ecryptfs-upper');
    const opts = `key=passphrase:passphrase_passwd_file=${join(base, 'pw')},${ECRYPTFS_OPTS}`;
    const mountS = timedMount(
      () => execFileSync(process.execPath, ['--openssl-legacy-provider', CLI, 'mount', lower, upper, '-o', opts], { stdio: 'ignore' }),
      upper,
    );
    const pid = await daemonPid(upper);
    return { name: 'ecryptfs-ts', dir: upper, mountS, pid, stop: () => unmountAndWait(upper, pid) };
  },
};

async function daemonPid(upper: string): Promise<number | undefined> {
  return (await readMountState(upper))?.pid;
}

/** The process whose command line holds `needle` (gocryptfs keeps its cipher dir in argv). */
function pidByCmdline(needle: string): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (cmd[0].endsWith('gocryptfs') && cmd.includes(needle)) return Number(d);
    } catch {
      // gone
    }
  }
  return undefined;
}

function unmountAndWait(dir: string, pid: number | undefined): void {
  spawnSync('umount', [dir]);
  // Let the daemon finish (it removes its record and exits) before the next step mounts again.
  for (let i = 0; pid && i < 200 && existsSync(`/proc/${pid}`); i++) spawnSync('sleep', ['0.05']);
}

const gocryptfs: Kind = {
  name: 'gocryptfs',
  init: (base) => {
    mkdirSync(join(base, 'gocryptfs-cipher'));
    mkdirSync(join(base, 'gocryptfs-plain'));
    writeFileSync(join(base, 'gpw'), 'bench-pass\n', { mode: 0o600 });
    sh(`gocryptfs -q -init -passfile ${join(base, 'gpw')} ${join(base, 'gocryptfs-cipher')}`);
  },
  mount: (base) => {
    const plainDir = join(base, 'gocryptfs-plain');
    const mountS = timedMount(() => sh(`gocryptfs -q -passfile ${join(base, 'gpw')} ${join(base, 'gocryptfs-cipher')} ${plainDir}`), plainDir);
    const pid = pidByCmdline(join(base, 'gocryptfs-cipher'));
    return { name: 'gocryptfs', dir: plainDir, mountS, pid, stop: () => unmountAndWait(plainDir, pid) };
  },
};

export function hasGocryptfs(): boolean {
  return spawnSync('sh', ['-c', 'command -v gocryptfs']).status === 0;
}

/** One row per workload; units in the label. Higher is better except mount time. */
export const WORKLOADS = [
  ['seqWrite', 'sequential write MB/s'],
  ['seqRead', 'sequential read MB/s (cold)'],
  ['randRead', 'random 4 KiB reads/s (cold)'],
  ['create', 'create small files/s'],
  ['lsCold', '`ls -lR` entries/s (cold)'],
  ['lsWarm', '`ls -lR` entries/s (warm)'],
  ['cat', '`cat` small files/s (cold)'],
  ['rm', '`rm -rf` files/s'],
  ['mount', 'mount time s'],
] as const;
export type Metric = (typeof WORKLOADS)[number][0];
export type Result = Record<Metric, number>;

/**
 * The bench's pseudo-random sequence (a 32-bit LCG). Math.imul keeps the product exact: a plain
 * `x * 1103515245` in floating point dropped the low bits, so "2,000 random reads" of a 512 MiB
 * file touched only ~470 distinct pages and the row measured mostly page-cache hits.
 */
function lcg(x: number): number {
  return (Math.imul(x, 1103515245) + 12345) >>> 0;
}

/** The small-file tree: `files` files of 1-8 KiB spread over 20 directories of 10 subdirectories. */
function smallTree(root: string, files: number): { paths: string[]; entries: number } {
  const paths: string[] = [];
  let x = 7;
  mkdirSync(root);
  for (let i = 0; i < 20; i++) {
    mkdirSync(join(root, `d${i}`));
    for (let j = 0; j < 10; j++) mkdirSync(join(root, `d${i}`, `s${j}`));
  }
  for (let k = 0; k < files; k++) {
    const p = join(root, `d${k % 20}`, `s${Math.floor(k / 20) % 10}`, `file${k}.txt`);
    paths.push(p);
    x = lcg(x);
    writeFileSync(p, Buffer.alloc(1024 + (x % (7 * 1024)), 0x61 + (k % 26)));
  }
  return { paths, entries: files + 220 };
}

export function runWorkloads(fs: FsUnderTest, o: { seqMB: number; randReads: number; files: number }): Result {
  const big = join(fs.dir, 'big');
  const seqWriteS = seconds(() => sh(`dd if=/dev/zero of=${big} bs=1M count=${o.seqMB} conv=fsync 2>/dev/null`));
  dropCaches();
  const seqReadS = seconds(() => sh(`dd if=${big} of=/dev/null bs=1M 2>/dev/null`));
  dropCaches();
  const fd = openSync(big, 'r');
  const buf = Buffer.alloc(4096);
  let x = 12345;
  const randS = seconds(() => {
    for (let i = 0; i < o.randReads; i++) {
      x = lcg(x);
      readSync(fd, buf, 0, 4096, (x % (o.seqMB * 256)) * 4096);
    }
  });
  closeSync(fd);
  unlinkSync(big);
  const root = join(fs.dir, 'tree');
  let tree: { paths: string[]; entries: number } = { paths: [], entries: 0 };
  const createS = seconds(() => (tree = smallTree(root, o.files)));
  sh('sync');
  dropCaches();
  const lsColdS = seconds(() => sh(`ls -lR ${root} > /dev/null`));
  const lsWarmS = seconds(() => sh(`ls -lR ${root} > /dev/null`));
  dropCaches();
  const catS = seconds(() => {
    for (const p of tree.paths) readFileSync(p);
  });
  const rmS = seconds(() => sh(`rm -rf ${root}`));
  return {
    seqWrite: (o.seqMB * 1.048576) / seqWriteS,
    seqRead: (o.seqMB * 1.048576) / seqReadS,
    randRead: o.randReads / randS,
    create: o.files / createS,
    lsCold: tree.entries / lsColdS,
    lsWarm: tree.entries / lsWarmS,
    cat: o.files / catS,
    rm: o.files / rmS,
    mount: fs.mountS,
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export interface Table {
  where: string;
  /** kind name -> metric -> median */
  results: Map<string, Result>;
}

/** The issue's table for the lower directory under `parent` (disk or tmpfs). */
export async function compareTable(where: string, parent: string, log: (s: string) => void): Promise<Table> {
  const o = { seqMB: env('BENCH_SEQ_MB', 512), randReads: env('BENCH_RAND_READS', 2000), files: env('BENCH_FILES', 3000) };
  const rounds = env('BENCH_ROUNDS', 3);
  const kinds = [plain, ...(hasGocryptfs() ? [gocryptfs] : []), ecryptfs];
  const base = mkdtempSync(join(parent, 'ecryptfs-mbench-'));
  const all = new Map<string, Result[]>();
  try {
    for (const k of kinds) k.init(base);
    for (let r = 0; r < rounds; r++) {
      for (const k of kinds) {
        const fs = await k.mount(base);
        try {
          const res = runWorkloads(fs, o);
          all.set(k.name, [...(all.get(k.name) ?? []), res]);
          log(`  ${where} round ${r + 1} ${k.name}: ${WORKLOADS.map(([m]) => `${m}=${res[m].toFixed(m === 'mount' ? 2 : 0)}`).join(' ')}`);
        } finally {
          fs.stop();
        }
      }
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  const results = new Map<string, Result>();
  for (const [name, rs] of all) {
    const m = {} as Result;
    for (const [k] of WORKLOADS) m[k] = median(rs.map((r) => r[k]));
    results.set(name, m);
  }
  return { where, results };
}

const fmt = (v: number, m: Metric) => (m === 'mount' ? (v ? v.toFixed(2) : '-') : Math.round(v).toLocaleString('en-US'));

/** Markdown table: plain, gocryptfs, ecryptfs-ts, ratio (ecryptfs-ts / gocryptfs; mount: how many times slower). */
export function formatTable(t: Table): string {
  const p = t.results.get('plain');
  const g = t.results.get('gocryptfs');
  const e = t.results.get('ecryptfs-ts')!;
  const lines = [`| workload (${t.where}) | plain | gocryptfs | ecryptfs-ts | ratio |`, '|---|---|---|---|---|'];
  for (const [m, label] of WORKLOADS) {
    let ratio = '';
    if (g) ratio = m === 'mount' ? `${(e[m] / g[m]).toFixed(2)}x time` : (e[m] / g[m]).toFixed(2);
    lines.push(`| ${label} | ${p ? fmt(p[m], m) : ''} | ${g ? fmt(g[m], m) : ''} | ${fmt(e[m], m)} | ${ratio} |`);
  }
  return lines.join('\n');
}

// ---- scale checks ----

function peakRssMiB(pid: number | undefined): number {
  if (!pid) return NaN;
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Run `n` shell commands at once and wait for all. */
function parallel(cmds: string[]): Promise<void> {
  return Promise.all(
    cmds.map(
      (c) =>
        new Promise<void>((resolve, reject) => {
          const p = spawn('sh', ['-c', c], { stdio: 'ignore' });
          p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${c}: exit ${code}`))));
        }),
    ),
  ).then(() => undefined);
}

async function secondsAsync(fn: () => Promise<void>): Promise<number> {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

/**
 * Throughput of BENCH_PAR processes at once, each writing (then reading, cold) its own file of
 * BENCH_PAR_MB, against one process doing one such file: medians of BENCH_PAR_ROUNDS (3)
 * interleaved rounds (one process's step is short, ~0.1 s, so a single round is noisy).
 */
export async function parallelIo(dir: string): Promise<{ n: number; mb: number; write: [string, string]; read: [string, string] }> {
  const n = env('BENCH_PAR', 8);
  const mb = env('BENCH_PAR_MB', 128);
  const rounds = env('BENCH_PAR_ROUNDS', 3);
  const f = (i: number) => join(dir, `par${i}`);
  const ids = [...Array(n).keys()];
  const write = (i: number) => `dd if=/dev/zero of=${f(i)} bs=1M count=${mb} conv=fsync 2>/dev/null`;
  const read = (i: number) => `dd if=${f(i)} of=/dev/null bs=1M 2>/dev/null`;
  const w1: number[] = [], wN: number[] = [], r1: number[] = [], rN: number[] = [];
  try {
    for (let r = 0; r < rounds; r++) {
      w1.push(await secondsAsync(() => parallel([write(0)])));
      dropCaches();
      r1.push(await secondsAsync(() => parallel([read(0)])));
      wN.push(await secondsAsync(() => parallel(ids.map(write))));
      dropCaches();
      rN.push(await secondsAsync(() => parallel(ids.map(read))));
    }
  } finally {
    for (const i of ids) rmSync(f(i), { force: true });
  }
  const mbs = (count: number, s: number) => ((count * mb * 1.048576) / s).toFixed(0);
  return { n, mb, write: [mbs(1, median(w1)), mbs(n, median(wN))], read: [mbs(1, median(r1)), mbs(n, median(rN))] };
}

/** parallelIo on a fresh mount of `kind` with its lower directory in `parent` (the tmpfs and gocryptfs comparisons). */
export async function parallelOnly(kind: 'ecryptfs-ts' | 'gocryptfs', parent: string): Promise<string> {
  const k = kind === 'gocryptfs' ? gocryptfs : ecryptfs;
  const base = mkdtempSync(join(parent, 'ecryptfs-par-'));
  try {
    k.init(base);
    const fs = await k.mount(base);
    try {
      const p = await parallelIo(fs.dir);
      return `write ${p.write[0]} -> ${p.write[1]} MB/s, read (cold) ${p.read[0]} -> ${p.read[1]} MB/s (1 -> ${p.n} processes, ${p.mb} MiB each)`;
    } finally {
      fs.stop();
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

export interface ScaleRow {
  what: string;
  value: string;
}

/** The scale checks on one mounted filesystem (lower directory on disk). */
export async function scaleChecks(kind: 'ecryptfs-ts' | 'gocryptfs', parent: string, log: (s: string) => void): Promise<ScaleRow[]> {
  const k = kind === 'gocryptfs' ? gocryptfs : ecryptfs;
  const base = mkdtempSync(join(parent, 'ecryptfs-scale-'));
  const rows: ScaleRow[] = [];
  const add = (what: string, value: string) => {
    rows.push({ what, value });
    log(`  ${kind}: ${what}: ${value}`);
  };
  try {
    k.init(base);
    const fs = await k.mount(base);
    try {
      // One directory of many files.
      const n = env('BENCH_SCALE_FILES', 100000);
      const dir = join(fs.dir, 'many');
      mkdirSync(dir);
      const createS = seconds(() => {
        for (let i = 0; i < n; i++) writeFileSync(join(dir, `f${i}`), 'x');
      });
      add(`create ${n.toLocaleString('en-US')} files in one directory`, `${Math.round(n / createS)} files/s`);
      dropCaches();
      const lsS = seconds(() => sh(`ls -l ${dir} > /dev/null`));
      add(`ls -l of it (cold)`, `${lsS.toFixed(2)} s (${Math.round(n / lsS)} entries/s)`);
      dropCaches();
      const stats = Math.min(n, 2000);
      let x = 99;
      const statS = seconds(() => {
        for (let i = 0; i < stats; i++) {
          x = lcg(x);
          lstatSync(join(dir, `f${x % n}`));
        }
      });
      add(`stat by name, ${stats} random names (cold)`, `${((statS / stats) * 1e6).toFixed(0)} us each`);
      const rmS = seconds(() => sh(`rm -rf ${dir}`));
      add(`delete them (rm -rf)`, `${Math.round(n / rmS)} files/s`);
      // One big file, written and read; the daemon's memory must not grow with it.
      const bigMB = env('BENCH_BIG_MB', 4096);
      const big = join(fs.dir, 'big');
      const rss0 = peakRssMiB(fs.pid);
      const wS = seconds(() => sh(`dd if=/dev/zero of=${big} bs=1M count=${bigMB} conv=fsync 2>/dev/null`));
      dropCaches();
      const rS = seconds(() => sh(`dd if=${big} of=/dev/null bs=1M 2>/dev/null`));
      unlinkSync(big);
      add(`${bigMB} MiB file write / read (cold)`, `${((bigMB * 1.048576) / wS).toFixed(0)} / ${((bigMB * 1.048576) / rS).toFixed(0)} MB/s; peak RSS ${rss0.toFixed(0)} -> ${peakRssMiB(fs.pid).toFixed(0)} MiB`);
      // Several processes at once, each on its own file, against one process doing one share.
      const par = await parallelIo(fs.dir);
      add(`write ${par.mb} MiB per process: 1 / ${par.n} processes`, `${par.write[0]} / ${par.write[1]} MB/s total`);
      add(`read ${par.mb} MiB per process (cold): 1 / ${par.n} processes`, `${par.read[0]} / ${par.read[1]} MB/s total`);
      add('serving process peak RSS (VmHWM)', `${peakRssMiB(fs.pid).toFixed(0)} MiB (limit 200 MiB)`);
    } finally {
      fs.stop();
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  return rows;
}
