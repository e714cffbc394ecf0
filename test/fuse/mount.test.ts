/**
 * Real mounts (root): a MemFs served by a separate daemon process, exercised with node:fs from
 * this process (the daemon's loop is not ours, so even blocking calls are safe).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { mountedAt, rootSkipReason, run, startMemfs, tempMountpoint, type Daemon } from './harness.js';

const skip = rootSkipReason();

async function errCode(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code;
  }
}

/** xattr syscalls through python3's os module (node:fs has none); async, never sync. */
async function xattr(op: string, path: string, name = '', value = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = `
import os, sys
op, p, n, v = sys.argv[1:5]
try:
    if op == 'set': os.setxattr(p, n, v.encode())
    elif op == 'create': os.setxattr(p, n, v.encode(), os.XATTR_CREATE)
    elif op == 'get': print(os.getxattr(p, n).decode())
    elif op == 'list': print(','.join(sorted(os.listxattr(p))))
    elif op == 'remove': os.removexattr(p, n)
except OSError as e:
    import errno; print(errno.errorcode[e.errno]); sys.exit(1)
`;
  return run('python3', ['-c', script, op, path, name, value]);
}

describe('FUSE mount of an in-memory filesystem (root)', { skip }, () => {
  let d: Daemon;
  let mp: string;
  const p = (...parts: string[]) => join(mp, ...parts);

  before(async () => {
    mp = tempMountpoint();
    d = await startMemfs(mp);
  });
  after(async () => {
    await d?.cleanup();
  });

  it('is listed in /proc/mounts as <source> <mountpoint> fuse.memfs', async () => {
    const line = await mountedAt(mp);
    assert.ok(line, 'mounted');
    const [source, target, type, options] = line.split(' ');
    assert.equal(source, `memfs:${mp}`);
    assert.equal(target, mp);
    assert.equal(type, 'fuse.memfs');
    assert.match(options, /default_permissions/);
    assert.equal(d.connection.maxWrite, 1 << 20);
  });

  it('creates, writes and reads at offsets', async () => {
    await fsp.writeFile(p('a.txt'), 'hello world');
    assert.equal(await fsp.readFile(p('a.txt'), 'utf8'), 'hello world');
    const fh = await fsp.open(p('a.txt'), 'r+');
    await fh.write(Buffer.from('XYZ'), 0, 3, 6);
    await fh.write(Buffer.from('end'), 0, 3, 10000);
    const buf = Buffer.alloc(5);
    await fh.read(buf, 0, 5, 6);
    assert.equal(buf.toString(), 'XYZld');
    await fh.close();
    const st = await fsp.stat(p('a.txt'));
    assert.equal(st.size, 10003);
    const all = await fsp.readFile(p('a.txt'));
    assert.equal(all.subarray(0, 11).toString(), 'hello XYZld');
    assert.ok(all.subarray(11, 10000).every((b) => b === 0), 'the gap reads as zeros');
    assert.equal(all.subarray(10000).toString(), 'end');
  });

  it('writes and reads 4 MiB in one call (1 MiB requests)', async () => {
    const data = randomBytes(4 << 20);
    await fsp.writeFile(p('big'), data);
    assert.equal((await fsp.stat(p('big'))).size, data.length);
    const back = await fsp.readFile(p('big'));
    assert.ok(back.equals(data), '4 MiB round trip');
    // A read straddling request boundaries.
    const fh = await fsp.open(p('big'), 'r');
    const part = Buffer.alloc(3 << 20);
    const { bytesRead } = await fh.read(part, 0, part.length, (1 << 20) - 7);
    await fh.close();
    assert.equal(bytesRead, part.length);
    assert.ok(part.equals(data.subarray((1 << 20) - 7, (4 << 20) - 7)));
  });

  it('truncates down and up (zero fill), and O_TRUNC', async () => {
    await fsp.writeFile(p('t'), 'abcdefghij');
    await fsp.truncate(p('t'), 4);
    assert.equal(await fsp.readFile(p('t'), 'utf8'), 'abcd');
    await fsp.truncate(p('t'), 8);
    assert.deepEqual([...(await fsp.readFile(p('t')))], [97, 98, 99, 100, 0, 0, 0, 0]);
    await fsp.writeFile(p('t'), 'x');
    assert.equal(await fsp.readFile(p('t'), 'utf8'), 'x');
  });

  it('renames, also over an existing file', async () => {
    await fsp.writeFile(p('r1'), 'one');
    await fsp.writeFile(p('r2'), 'two');
    await fsp.rename(p('r1'), p('r3'));
    assert.equal(await errCode(fsp.stat(p('r1'))), 'ENOENT');
    assert.equal(await fsp.readFile(p('r3'), 'utf8'), 'one');
    await fsp.rename(p('r3'), p('r2'));
    assert.equal(await fsp.readFile(p('r2'), 'utf8'), 'one');
    await fsp.mkdir(p('rd'));
    await fsp.rename(p('r2'), p('rd', 'moved'));
    assert.equal(await fsp.readFile(p('rd', 'moved'), 'utf8'), 'one');
  });

  it('unlinks', async () => {
    await fsp.writeFile(p('u'), 'gone soon');
    await fsp.unlink(p('u'));
    assert.equal(await errCode(fsp.stat(p('u'))), 'ENOENT');
    assert.equal(await errCode(fsp.unlink(p('u'))), 'ENOENT');
  });

  it('makes, lists and removes directories; readdir pages through many entries', async () => {
    await fsp.mkdir(p('dir'));
    assert.equal(await errCode(fsp.mkdir(p('dir'))), 'EEXIST');
    const names = Array.from({ length: 600 }, (_, i) => `entry-with-a-long-name-${String(i).padStart(4, '0')}`);
    for (const n of names) await fsp.writeFile(p('dir', n), n);
    const listed = (await fsp.readdir(p('dir'))).sort();
    assert.deepEqual(listed, names);
    assert.equal(await errCode(fsp.rmdir(p('dir'))), 'ENOTEMPTY');
    const typed = await fsp.readdir(p('dir'), { withFileTypes: true });
    assert.ok(typed.every((e) => e.isFile()));
    for (const n of names) await fsp.unlink(p('dir', n));
    await fsp.rmdir(p('dir'));
    assert.equal(await errCode(fsp.stat(p('dir'))), 'ENOENT');
    assert.equal(await errCode(fsp.readdir(p('nodir'))), 'ENOENT');
  });

  it('keeps file names as bytes (not UTF-8)', async () => {
    const name = Buffer.from([0x6c, 0xe4, 0xff, 0x2e, 0x74]); // latin-1 "lä\xff.t"
    const path = Buffer.concat([Buffer.from(mp + '/'), name]);
    await fsp.writeFile(path, 'bytes');
    const listed = await fsp.readdir(mp, { encoding: 'buffer' });
    assert.ok(listed.some((n) => n.equals(name)));
    assert.equal(await fsp.readFile(path, 'utf8'), 'bytes');
    await fsp.unlink(path);
  });

  it('makes and reads symlinks', async () => {
    await fsp.writeFile(p('target'), 'pointed at');
    await fsp.symlink('target', p('link'));
    assert.equal(await fsp.readlink(p('link')), 'target');
    assert.ok((await fsp.lstat(p('link'))).isSymbolicLink());
    assert.equal(await fsp.readFile(p('link'), 'utf8'), 'pointed at');
    await fsp.symlink('/nowhere/at/all', p('dangling'));
    assert.equal(await errCode(fsp.stat(p('dangling'))), 'ENOENT');
    assert.equal(await fsp.readlink(p('dangling')), '/nowhere/at/all');
  });

  it('makes hard links sharing one inode', async () => {
    await fsp.writeFile(p('h1'), 'shared');
    await fsp.link(p('h1'), p('h2'));
    const [a, b] = [await fsp.stat(p('h1')), await fsp.stat(p('h2'))];
    assert.equal(a.ino, b.ino);
    assert.equal(b.nlink, 2);
    await fsp.appendFile(p('h2'), '!');
    assert.equal(await fsp.readFile(p('h1'), 'utf8'), 'shared!');
    await fsp.unlink(p('h1'));
    assert.equal((await fsp.stat(p('h2'))).nlink, 1);
    assert.equal(await errCode(fsp.link(p('h2'), p('target'))), 'EEXIST');
  });

  it('changes modes and times', async () => {
    await fsp.writeFile(p('m'), 'x');
    await fsp.chmod(p('m'), 0o640);
    assert.equal((await fsp.stat(p('m'))).mode & 0o7777, 0o640);
    const when = new Date('2001-02-03T04:05:06.789Z');
    await fsp.utimes(p('m'), when, when);
    const st = await fsp.stat(p('m'));
    assert.equal(st.mtime.getTime(), when.getTime());
    assert.equal(st.atime.getTime(), when.getTime());
    assert.ok(st.isFile());
  });

  it('reports statfs', async () => {
    const s = await fsp.statfs(mp);
    assert.equal(s.bsize, 4096);
    assert.equal(s.blocks, 1 << 20);
    assert.ok(s.bfree <= s.blocks);
  });

  it('sets, gets, lists and removes xattrs', async () => {
    await fsp.writeFile(p('x'), '');
    assert.equal((await xattr('set', p('x'), 'user.one', 'value 1')).code, 0);
    assert.equal((await xattr('set', p('x'), 'user.two', 'value 2')).code, 0);
    assert.equal((await xattr('get', p('x'), 'user.one')).stdout.trim(), 'value 1');
    assert.equal((await xattr('list', p('x'))).stdout.trim(), 'user.one,user.two');
    const dup = await xattr('create', p('x'), 'user.one', 'again');
    assert.equal(dup.stdout.trim(), 'EEXIST');
    assert.equal((await xattr('remove', p('x'), 'user.one')).code, 0);
    assert.equal((await xattr('get', p('x'), 'user.one')).stdout.trim(), 'ENODATA');
  });

  it('maps errors to errno (ENOENT, EEXIST, ENOTDIR, EISDIR)', async () => {
    assert.equal(await errCode(fsp.readFile(p('missing'))), 'ENOENT');
    await fsp.writeFile(p('e'), '');
    assert.equal(await errCode(fsp.writeFile(p('e'), '', { flag: 'wx' })), 'EEXIST');
    assert.equal(await errCode(fsp.readdir(p('e'))), 'ENOTDIR');
    assert.equal(await errCode(fsp.writeFile(p('e', 'sub'), '')), 'ENOTDIR');
    await fsp.mkdir(p('isdir'));
    assert.equal(await errCode(fsp.unlink(p('isdir'))), 'EISDIR');
  });

  it('serves concurrent readers and writers', async () => {
    const files = Array.from({ length: 8 }, (_, i) => ({ name: p(`c${i}`), data: randomBytes(1 << 20) }));
    await Promise.all(files.map((f) => fsp.writeFile(f.name, f.data)));
    const back = await Promise.all(files.map((f) => fsp.readFile(f.name)));
    back.forEach((b, i) => assert.ok(b.equals(files[i].data)));
  });

  it('unmounts on request and resolves `closed`', async () => {
    d.child.kill('SIGTERM');
    const r = await d.exited;
    assert.equal(r.code, 0);
    assert.ok(r.sawClosed, 'the daemon saw closed resolve');
    assert.equal(await mountedAt(mp), undefined);
  });
});

describe('FUSE mount lifecycle (root)', { skip }, () => {
  it('resolves `closed` when unmounted from outside with umount(8)', async () => {
    const mp = tempMountpoint();
    const d = await startMemfs(mp);
    try {
      await fsp.writeFile(join(mp, 'f'), 'x');
      const r = await run('umount', [mp]);
      assert.equal(r.code, 0, r.stderr);
      const e = await d.exited;
      assert.equal(e.code, 0);
      assert.ok(e.sawClosed);
    } finally {
      await d.cleanup();
    }
  });

  it('a killed daemon leaves no dead mount behind (watchdog runs umount -l)', async () => {
    const mp = tempMountpoint();
    const d = await startMemfs(mp);
    try {
      d.child.kill('SIGKILL');
      await d.exited;
      let line = await mountedAt(mp);
      for (let i = 0; i < 50 && line; i++) {
        await new Promise((r) => setTimeout(r, 100));
        line = await mountedAt(mp);
      }
      assert.equal(line, undefined, 'the watchdog unmounted it');
      await fsp.writeFile(join(mp, 'plain'), 'the directory is usable again');
    } finally {
      await d.cleanup();
    }
  });

  it('serves on blocking reads and still handles SIGTERM on an idle mount (the waker)', async () => {
    const mp = tempMountpoint();
    const d = await startMemfs(mp, { FUSE_STATS: '1' });
    try {
      for (let i = 0; i < 20; i++) await fsp.writeFile(join(mp, `b${i}`), String(i));
      // The waker thread starts after INIT; until it runs, requests come through pooled reads.
      await new Promise((r) => setTimeout(r, 1000));
      for (let i = 0; i < 20; i++) assert.equal(await fsp.readFile(join(mp, `b${i}`), 'utf8'), String(i));
      // Idle well past the waker's 20 ms: the main thread sits in a blocking read until woken.
      await new Promise((r) => setTimeout(r, 300));
      const t = Date.now();
      d.child.kill('SIGTERM');
      const e = await d.exited;
      assert.equal(e.code, 0);
      assert.ok(e.sawClosed);
      assert.ok(Date.now() - t < 3000, `SIGTERM took ${Date.now() - t} ms`);
      const m = /reads: (\d+) blocking, (\d+) pooled/.exec(d.stderr());
      assert.ok(m, d.stderr());
      assert.ok(Number(m[1]) >= 40, `the reads after the first second came on blocking reads: ${m[0]}`);
    } finally {
      await d.cleanup();
    }
  });

  it('does not wake the waker thread for every answer given on a promise', async () => {
    const mp = tempMountpoint();
    const d = await startMemfs(mp, { FUSE_STATS: '1', MEMFS_PROMISES: '1', MEMFS_ATTR_TIMEOUT: '0', MEMFS_ENTRY_TIMEOUT: '0' });
    try {
      await fsp.writeFile(join(mp, 'f'), 'x');
      // The waker thread starts after INIT; until it runs, requests come through pooled reads.
      await new Promise((r) => setTimeout(r, 1000));
      // Each answer on a promise ends a blocking episode (the event loop takes a turn) and the
      // next request starts one: 300 stats, each a LOOKUP and a GETATTR (no caching).
      for (let i = 0; i < 300; i++) await fsp.stat(join(mp, 'f'));
      d.child.kill('SIGTERM');
      await d.exited;
      const m = /reads: (\d+) blocking, (\d+) pooled; blocking reads on; waker woken (\d+) times/.exec(d.stderr());
      assert.ok(m, d.stderr());
      assert.ok(Number(m[1]) >= 100, `requests came on blocking reads: ${m[0]}`);
      // Woken only when it slept until an episode began (it waits in periods of 20 ms otherwise).
      assert.ok(Number(m[3]) < Number(m[1]) / 4, `the waker was woken for most episodes: ${m[0]}`);
    } finally {
      await d.cleanup();
    }
  });

  it('counts the polls before blocking reads that found a request and that ran out (FUSE_STATS)', async () => {
    const poll = /poll before a blocking read: found a request (\d+) times, ran out (\d+) times/;
    for (const spinUs of ['5000', '0']) {
      const mp = tempMountpoint();
      // 5 ms: the client's next stat comes within it, whatever the machine's load.
      const d = await startMemfs(mp, { FUSE_STATS: '1', FUSE_SPIN_US: spinUs, FUSE_SPIN_MAX_PRESSURE: '100', MEMFS_ATTR_TIMEOUT: '0', MEMFS_ENTRY_TIMEOUT: '0' });
      try {
        await fsp.writeFile(join(mp, 'f'), 'x');
        await new Promise((r) => setTimeout(r, 1000)); // blocking reads begin once the waker runs
        for (let i = 0; i < 200; i++) await fsp.stat(join(mp, 'f'));
        d.child.kill('SIGTERM');
        await d.exited;
        const reads = /reads: (\d+) blocking/.exec(d.stderr());
        const m = poll.exec(d.stderr());
        assert.ok(reads && m, d.stderr());
        const [found, ranOut] = [Number(m[1]), Number(m[2])];
        if (spinUs === '0') assert.equal(found + ranOut, 0, m[0]);
        else {
          assert.ok(found + ranOut >= Number(reads[1]), `one poll before each blocking read: ${m[0]}, ${reads[0]}`);
          assert.ok(found >= 200, `the stats' requests came while it polled: ${m[0]}`);
        }
      } finally {
        await d.cleanup();
      }
    }
  });

  it('serves READDIRPLUS and writeback cache when asked', async () => {
    const mp = tempMountpoint();
    const d = await startMemfs(mp, { MEMFS_READDIRPLUS: '1', MEMFS_WRITEBACK: '1' });
    try {
      assert.ok(d.connection.flags & (1 << 13), 'DO_READDIRPLUS negotiated');
      assert.ok(d.connection.flags & (1 << 16), 'WRITEBACK_CACHE negotiated');
      for (let i = 0; i < 50; i++) await fsp.writeFile(join(mp, `f${i}`), String(i));
      await fsp.mkdir(join(mp, 'sub'));
      const entries = await fsp.readdir(mp, { withFileTypes: true });
      assert.equal(entries.length, 51);
      assert.ok(entries.find((e) => e.name === 'sub')?.isDirectory());
      for (let i = 0; i < 50; i++) assert.equal(await fsp.readFile(join(mp, `f${i}`), 'utf8'), String(i));
      const data = randomBytes(3 << 20);
      await fsp.writeFile(join(mp, 'wb'), data);
      assert.ok((await fsp.readFile(join(mp, 'wb'))).equals(data));
    } finally {
      await d.cleanup();
    }
  });
});
