/**
 * Mount benchmarks: ecryptfs-ts through FUSE vs gocryptfs (Debian package) vs the plain lower
 * directory, measured in the same run, once with the lower directory on disk and once on tmpfs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

export interface FsUnderTest {
  name: string;
  dir: string;
  stop(): void;
}

function sh(cmd: string): void {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
}

function dropCaches(): void {
  spawnSync('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches'], { stdio: 'ignore' });
}

function seconds(fn: () => void): number {
  const t = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t) / 1e9;
}

export function mountEcryptfs(base: string): FsUnderTest {
  const lower = join(base, 'ecryptfs-lower');
  const upper = join(base, 'ecryptfs-upper');
  mkdirSync(lower);
  mkdirSync(upper);
  writeFileSync(join(base, 'pw'), 'passphrase_passwd=bench-pass\n', { mode: 0o600 });
  execFileSync(process.execPath, ['--openssl-legacy-provider', CLI, 'mount', lower, upper, '-o', `key=passphrase:passphrase_passwd_file=${join(base, 'pw')},ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y,no_sig_cache`], { stdio: 'ignore' });
  return { name: 'ecryptfs-ts', dir: upper, stop: () => spawnSync('umount', [upper]) };
}

export function mountGocryptfs(base: string): FsUnderTest | undefined {
  if (spawnSync('sh', ['-c', 'command -v gocryptfs']).status !== 0) return undefined;
  const cipher = join(base, 'gocryptfs-cipher');
  const plain = join(base, 'gocryptfs-plain');
  mkdirSync(cipher);
  mkdirSync(plain);
  writeFileSync(join(base, 'gpw'), 'bench-pass\n', { mode: 0o600 });
  sh(`gocryptfs -q -init -passfile ${join(base, 'gpw')} ${cipher}`);
  sh(`gocryptfs -q -passfile ${join(base, 'gpw')} ${cipher} ${plain}`);
  return { name: 'gocryptfs', dir: plain, stop: () => spawnSync('fusermount3', ['-u', plain]) };
}

export function plainDir(base: string): FsUnderTest {
  const d = join(base, 'plain');
  mkdirSync(d);
  return { name: 'plain lower dir', dir: d, stop: () => undefined };
}

export interface MountResult {
  seqWrite: number;
  seqRead: number;
  smallFiles: number;
  randRead: number;
}

export function runMountBench(fs: FsUnderTest, sizeMiB: number, smallFiles = 2000): MountResult {
  const big = join(fs.dir, 'big');
  const seqWriteS = seconds(() => sh(`dd if=/dev/zero of=${big} bs=1M count=${sizeMiB} conv=fsync 2>/dev/null`));
  dropCaches();
  const seqReadS = seconds(() => sh(`dd if=${big} of=/dev/null bs=1M 2>/dev/null`));
  // 4 KiB random reads (buffered, after dropping caches).
  dropCaches();
  const fd = openSync(big, 'r');
  const buf = Buffer.alloc(4096);
  const n = 2000;
  let x = 12345;
  const randS = seconds(() => {
    for (let i = 0; i < n; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      readSync(fd, buf, 0, 4096, (x % (sizeMiB * 256)) * 4096);
    }
  });
  closeSync(fd);
  const small = join(fs.dir, 'small');
  mkdirSync(small);
  const smallS = seconds(() => {
    const data = Buffer.alloc(1000, 7);
    for (let i = 0; i < smallFiles; i++) writeFileSync(join(small, `f${i}`), data);
    sh(`stat ${small}/* > /dev/null`);
    sh(`cat ${small}/* > /dev/null`);
    sh(`rm -r ${small}`);
  });
  rmSync(big);
  return { seqWrite: sizeMiB / seqWriteS, seqRead: sizeMiB / seqReadS, smallFiles: smallFiles / smallS, randRead: n / randS };
}

export function mountBench(sizeMiB: number): string[][] {
  const rows: string[][] = [];
  const bases: Array<[string, string]> = [['disk', '/var/tmp'], ['tmpfs', '/dev/shm']];
  for (const [where, parent] of bases) {
    if (!existsSync(parent)) continue;
    const base = mkdtempSync(join(parent, 'ecryptfs-mbench-'));
    const results: Array<[string, MountResult]> = [];
    try {
      for (const make of [plainDir, mountEcryptfs, mountGocryptfs]) {
        const fs = make(base);
        if (!fs) continue;
        try {
          results.push([fs.name, runMountBench(fs, sizeMiB)]);
        } finally {
          fs.stop();
        }
      }
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
    const go = results.find(([n]) => n === 'gocryptfs')?.[1];
    for (const [name, r] of results) {
      const ratio = (k: keyof MountResult) => (go && name === 'ecryptfs-ts' ? ` (${(r[k] / go[k]).toFixed(2)}x)` : '');
      rows.push([`${where}: ${name}`, `${r.seqWrite.toFixed(0)}${ratio('seqWrite')}`, `${r.seqRead.toFixed(0)}${ratio('seqRead')}`, `${r.smallFiles.toFixed(0)}${ratio('smallFiles')}`, `${r.randRead.toFixed(0)}${ratio('randRead')}`]);
    }
  }
  return rows;
}
