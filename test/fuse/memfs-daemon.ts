/**
 * Serves a MemFs at argv[2] (subtype argv[3], default "memfs") until unmounted. Started by the
 * mount tests and the benchmark as a separate process, so that their own (possibly blocking)
 * file calls on the mount never wait on the event loop that serves it.
 * stdout: "ready <connection json>" once the mount is usable, "closed" once it is unmounted.
 * Needs MEMFS_DAEMON=1 in the environment. SIGTERM unmounts. MEMFS_ZERO=1 serves ZeroFs instead (benchmark). MEMFS_PROMISES=1 answers every request on a promise (as the eCryptfs mount answers create, release and unlink). Run as root, or through fusermount-helper.py (FUSE_FD set).
 */
import { resolve } from 'node:path';
import { mountFuse } from '../../src/fuse/mount.js';
import type { FuseOperations } from '../../src/fuse/operations.js';
import { MemFs } from './memfs.js';
import { ZeroFs } from './zerofs.js';

// node --test runs every .js under test/: do nothing unless started on purpose.
if (process.env.MEMFS_DAEMON !== '1' || !process.argv[2]) process.exit(0);
const mountpoint = resolve(process.argv[2]);
const subtype = process.argv[3] ?? 'memfs';
const fs: FuseOperations = process.env.MEMFS_ZERO === '1' ? new ZeroFs() : new MemFs();
/** The same operations, each answer on an already resolved promise. */
function onPromises(ops: FuseOperations): FuseOperations {
  return new Proxy(ops, {
    get(target, key) {
      const v = Reflect.get(target, key) as unknown;
      if (typeof v !== 'function' || key === 'init' || key === 'destroy') return v;
      return (...args: unknown[]) => Promise.resolve((v as (...a: unknown[]) => unknown).apply(target, args));
    },
  });
}
const m = await mountFuse(process.env.MEMFS_PROMISES === '1' ? onPromises(fs) : fs, {
  source: `memfs:${mountpoint}`,
  mountpoint,
  subtype,
  server: {
    attrTimeout: Number(process.env.MEMFS_ATTR_TIMEOUT ?? 1),
    entryTimeout: Number(process.env.MEMFS_ENTRY_TIMEOUT ?? 1),
    readdirplus: process.env.MEMFS_READDIRPLUS === '1',
    writebackCache: process.env.MEMFS_WRITEBACK === '1',
  },
});
process.stdout.write(`ready ${JSON.stringify(m.server.connection)}\n`);
process.on('SIGTERM', () => void m.unmount());
process.on('SIGINT', () => void m.unmount());
await m.closed;
process.stdout.write('closed\n');
process.exit(0);
