/**
 * FUSE server round-trip latency (not a test): serves the in-memory test filesystem (MemFs,
 * no eCryptfs) and times single requests from a python3 client, so the numbers are the kernel
 * round trip plus our server's cost per request. Run as root:
 *   node dist/bench/fuselat.js [N]        (FUSELAT_PROF=1: the daemon writes a --cpu-prof)
 * Also used by bench.ts for the "FUSE server" section.
 */
import { fileURLToPath } from 'node:url';
import { run, startDaemon, tempMountpoint, DAEMON } from '../test/fuse/harness.js';

const PY = String.raw`
import os, sys, time, json
mp, n, entries = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
f = os.path.join(mp, 'f')
open(f, 'w').close()
res = {}
def per(label, fn, count):
    t = time.perf_counter()
    for i in range(count):
        fn(i)
    res[label] = (time.perf_counter() - t) / count * 1e6
def gx(i):
    try:
        os.getxattr(f, 'user.nothing')
    except OSError:
        pass
def miss(i):
    try:
        os.lstat(os.path.join(mp, 'missing%d' % (i & 1023)))
    except OSError:
        pass
per('getxattr ENODATA us', gx, n)
per('lookup missing us', miss, n)
per('getattr us (attr timeout 0)', lambda i: os.lstat(f), n)
def rd(i):
    fd = os.open(f, os.O_RDONLY)
    os.close(fd)
per('open+release us', rd, n // 4)
d = os.path.join(mp, 'many')
os.mkdir(d)
t = time.perf_counter()
for i in range(entries):
    open(os.path.join(d, 'file%05d' % i), 'w').close()
res['create us/file'] = (time.perf_counter() - t) / entries * 1e6
print(json.dumps(res))
`;

async function clientRun(mp: string, n: number, entries: number): Promise<FuseLatency> {
  const r = await run('python3', ['-c', PY, mp, String(n), String(entries)]);
  if (r.code !== 0) throw new Error(`fuselat client: ${r.stderr}`);
  const res = JSON.parse(r.stdout) as FuseLatency;
  // ls -l: readdir + lstat + getxattr (security.selinux, posix acl) per entry; best of 3.
  for (let i = 0; i < 3; i++) {
    const t = process.hrtime.bigint();
    const ls = await run('ls', ['-l', `${mp}/many`]);
    if (ls.code !== 0) throw new Error(`ls: ${ls.stderr}`);
    const s = Number(process.hrtime.bigint() - t) / 1e9;
    res[`ls -l ${entries} entries s`] = Math.min(res[`ls -l ${entries} entries s`] ?? Infinity, s);
  }
  await run('rm', ['-rf', `${mp}/many`, `${mp}/f`]);
  return res;
}

export interface FuseLatency {
  [label: string]: number;
}

/** Mount MemFs (attr/entry timeouts 0 so every call reaches the server) and measure. */
export async function fuseLatency(n = 5000, entries = 3000, env: Record<string, string> = {}): Promise<FuseLatency> {
  // FUSELAT_DIR: measure a directory that is already mounted (e.g. an ecryptfs-ts mount) instead.
  if (process.env.FUSELAT_DIR) return clientRun(process.env.FUSELAT_DIR, n, entries);
  const mp = tempMountpoint();
  const nodeArgs = process.env.FUSELAT_PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/fuselat-prof'] : [];
  const d = await startDaemon(mp, process.execPath, [...nodeArgs, DAEMON, mp], {
    MEMFS_ATTR_TIMEOUT: '0',
    MEMFS_ENTRY_TIMEOUT: '0',
    ...env,
  });
  try {
    return await clientRun(mp, n, entries);
  } finally {
    await d.cleanup();
    if (process.env.FUSELAT_STDERR) process.stderr.write(d.stderr());
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const n = Number(process.argv[2] ?? 5000);
  const res = await fuseLatency(n, Number(process.env.FUSELAT_ENTRIES ?? 3000));
  for (const [k, v] of Object.entries(res)) console.log(`${k.padEnd(34)} ${v.toFixed(k.endsWith(' s') ? 3 : 1)}`);
}
