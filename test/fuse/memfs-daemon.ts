/**
 * Serves a MemFs at argv[2] (subtype argv[3], default "memfs") until unmounted. Started by the
 * mount tests and the benchmark as a separate process, so that their own (possibly blocking)
 * file calls on the mount never wait on the event loop that serves it.
 * stdout: "ready <connection json>" once the mount is usable, "closed" once it is unmounted.
 * Needs MEMFS_DAEMON=1 in the environment. SIGTERM unmounts. MEMFS_ZERO=1 serves ZeroFs instead (benchmark). Run as root, or through fusermount-helper.py (FUSE_FD set).
 */
import { resolve } from 'node:path';
import { mountFuse } from '../../src/fuse/mount.js';
import { MemFs } from './memfs.js';
import { ZeroFs } from './zerofs.js';

// node --test runs every .js under test/: do nothing unless started on purpose.
if (process.env.MEMFS_DAEMON !== '1' || !process.argv[2]) process.exit(0);
const mountpoint = resolve(process.argv[2]);
const subtype = process.argv[3] ?? 'memfs';
const m = await mountFuse(process.env.MEMFS_ZERO === '1' ? new ZeroFs() : new MemFs(), {
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
