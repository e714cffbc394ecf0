/**
 * READDIRPLUS (FsDirOps.readdirAt with plus, FsDirOps.plusEntry; serve.ts turns it on): a listing
 * carries the LOOKUP answer of each name whose node the kernel does not hold, counted exactly as
 * a LOOKUP; names the kernel holds with a fresh entry go as plain names (nodeid 0), so the kernel
 * keeps their cached ACLs and attributes. Through a real mount: `ls -l` of new names sends no
 * LOOKUP, a warm listing no more ACL GETXATTRs, and every count is given back by FORGET.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants as C, chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EcryptfsFs, ROOT } from '../../src/mount/fs.js';
import type { ListedEntry } from '../../src/mount/fs/dir-ops.js';
import { credsEnabled } from '../../src/lower/creds.js';
import { tempDir } from '../helpers/fixtures.js';
import { withFreshFs } from './fresh-fs.js';
import { mountSkipReason, mountVolume, sh } from './harness.js';


/** Every entry of directory `nodeid` (as the kernel pages through it), with `plus`. */
function listAll(fs: EcryptfsFs, nodeid: number, plus: boolean, ctx?: { uid: number; gid: number; pid: number; umask?: number }): ListedEntry[] {
  const fh = fs.opendir(nodeid, ctx);
  const out: ListedEntry[] = [];
  try {
    let off = 0;
    for (;;) {
      const got = fs.readdirAt(fh, off, 7, plus, ctx);
      if (got.length === 0) break;
      off = got[got.length - 1].offset;
      out.push(...got);
    }
  } finally {
    fs.releasedir(fh);
  }
  return out;
}

const named = (list: ListedEntry[]) => new Map(list.filter((e) => !['.', '..'].includes(e.name.toString())).map((e) => [e.name.toString(), e]));

test('plus entries answer as LOOKUP for names the kernel does not hold, nodeid 0 for those it holds fresh', async () => {
  await withFreshFs(async ({ fs }) => {
    const d = await fs.mkdir(ROOT, 'd', 0o755);
    const sizes = new Map<string, number>();
    for (let i = 0; i < 12; i++) {
      const { entry, fh } = await fs.create(d.nodeid, `f${i}`, 0o100640, C.O_RDWR | C.O_CREAT);
      const size = 100 * i + 1;
      await fs.write(fh, 0, Buffer.alloc(size, i));
      await fs.release(fh);
      fs.forget(entry.nodeid, 1); // the kernel let go of it: only d is held
      sizes.set(`f${i}`, size);
    }
    await fs.mkdir(d.nodeid, 'sub', 0o700).then((e) => fs.forget(e.nodeid, 1));
    await fs.symlink(d.nodeid, 'ln', 'f1').then((e) => fs.forget(e.nodeid, 1));
    assert.equal(fs.tables().nodes, 2, 'root and d');

    // Without plus: plain entries, no lookups.
    assert.ok(listAll(fs, d.nodeid, false).every((e) => e.lookup === undefined));

    const first = named(listAll(fs, d.nodeid, true));
    assert.equal(first.size, 14);
    assert.ok(!listAll(fs, d.nodeid, true).some((e) => ['.', '..'].includes(e.name.toString()) && e.lookup), '. and .. carry no lookup');
    assert.equal(fs.tables().nodes, 2, 'listing alone counts nothing: only an entry sent is looked up');
    const ids = new Map<string, number>();
    for (const [name, e] of first) {
      const r = e.lookup!();
      assert.ok(r, name);
      ids.set(name, r.nodeid);
      const st = fs.getattrSync(r.nodeid);
      assert.deepEqual(r.attr, st, `${name}: the attributes a getattr gives`);
      if (name.startsWith('f')) {
        assert.equal(r.attr.size, sizes.get(name), `${name}: the clear size`);
        assert.equal(r.attr.mode, 0o100640);
      }
    }
    assert.equal(ids.get('ln') && fs.getattrSync(ids.get('ln')!).size, 2, "a symlink's clear target length");
    assert.equal(fs.tables().nodes, 2 + 14);
    // The same as LOOKUP: the same node ids, one count each (one forget drops them all).
    assert.equal(fs.lookupSync(d.nodeid, 'f3').nodeid, ids.get('f3'));
    fs.forget(ids.get('f3')!, 1);

    // Held, entries just sent: the name alone, nothing counted.
    for (const e of named(listAll(fs, d.nodeid, true)).values()) assert.equal(e.lookup!(), null, e.name.toString());
    // Past the entry timeout the kernel would LOOKUP the name anyway: the entry goes along, counted.
    fs.entryTimeoutMs = 0;
    const again = named(listAll(fs, d.nodeid, true));
    assert.equal(again.get('f5')!.lookup!()!.nodeid, ids.get('f5'));
    fs.entryTimeoutMs = 1000;
    for (const [name, id] of ids) fs.forget(id, name === 'f5' ? 2 : 1);
    assert.equal(fs.tables().nodes, 2, 'every count given back: nothing leaked');

    // A name gone between the listing and the entry: the name alone, nothing counted.
    const late = named(listAll(fs, d.nodeid, true));
    await fs.unlink(d.nodeid, 'f7');
    assert.equal(late.get('f7')!.lookup!(), null);
    assert.equal(fs.tables().nodes, 2);
  });
});

test('a caller who may read but not search a directory gets plain names from READDIRPLUS', { skip: credsEnabled() ? false : 'needs root (per-caller credentials)' }, async () => {
  await withFreshFs(async ({ fs }) => {
    const d = await fs.mkdir(ROOT, 'noexec', 0o755);
    const { fh } = await fs.create(d.nodeid, 'secret', 0o100644, C.O_RDWR | C.O_CREAT);
    await fs.release(fh);
    const stranger = { uid: 64011, gid: 64011, pid: process.pid, umask: 0 };
    // Opened while searchable, then the search permission goes (as chmod on an open directory).
    const dh = fs.opendir(d.nodeid, stranger);
    await fs.setattr(d.nodeid, { mode: 0o744 });
    let list: Map<string, ListedEntry>;
    try {
      list = named(fs.readdirAt(dh, 0, 100, true, stranger));
    } finally {
      fs.releasedir(dh);
    }
    assert.ok(list.has('secret'), 'listed (read permission)');
    assert.equal(list.get('secret')!.lookup, undefined, 'no attributes without search permission');
    assert.ok(named(listAll(fs, d.nodeid, true)).get('secret')!.lookup, 'root gets them');
  });
});

/** Count of `op` in a FUSE_STATS table. */
const count = (stats: string, op: string) => Number(new RegExp(`^${op}\\s+(\\d+)`, 'm').exec(stats)?.[1] ?? 0);

test('through a mount: `ls -l` of new names sends no LOOKUP and shows sizes and modes; a warm listing no ACL GETXATTRs; after FORGET it lists again', { skip: mountSkipReason() }, async () => {
  const work = tempDir('rdplus-');
  const stats = join(work.path, 'stats');
  const N = 40;
  const saved = process.env.FUSE_STATS;
  const savedMode = process.env.ECRYPTFS_READDIRPLUS;
  const m = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y');
  try {
    mkdirSync(join(m.upper, 'd'));
    for (let i = 0; i < N; i++) writeFileSync(join(m.upper, 'd', `f${i}`), Buffer.alloc(37 * i + 5, 0x61));
    chmodSync(join(m.upper, 'd', 'f3'), 0o600);
    await m.umount();
    /** A fresh mount of the same lower directory (the kernel holds nothing), FUSE_STATS on; `fn`, then its counts. */
    const run = async (fn: (dir: string) => void): Promise<string> => {
      process.env.FUSE_STATS = stats;
      delete process.env.ECRYPTFS_READDIRPLUS; // the default is what is tested
      rmSync(stats, { force: true });
      let again: Awaited<ReturnType<typeof mountVolume>>;
      try {
        again = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y', { lower: m.lower });
      } finally {
        if (saved === undefined) delete process.env.FUSE_STATS;
        else process.env.FUSE_STATS = saved;
        if (savedMode !== undefined) process.env.ECRYPTFS_READDIRPLUS = savedMode;
      }
      try {
        fn(join(again.upper, 'd'));
      } finally {
        await again.umount();
      }
      // The daemon writes its table when it sees the unmount, maybe just after umount returned.
      for (let i = 0; i < 100 && !existsSync(stats); i++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, 50));
      return readFileSync(stats, 'utf8');
    };
    const ls = (dir: string) => assert.equal(sh(`ls -l ${dir} >/dev/null`).code, 0);
    const cold = await run((dir) => {
      for (const name of readdirSync(dir)) {
        const i = Number(name.slice(1));
        const st = lstatSync(join(dir, name));
        assert.equal(st.size, 37 * i + 5, name);
        assert.equal(st.mode, i === 3 ? 0o100600 : 0o100644, name);
      }
    });
    assert.ok(count(cold, 'READDIRPLUS') > 0, cold);
    assert.ok(count(cold, 'LOOKUP') <= 1, `only d is looked up, not its ${N} names:\n${cold}`);
    const once = await run(ls);
    const twice = await run((dir) => {
      ls(dir);
      ls(dir);
    });
    // `ls -l` asks two xattrs per file, of which the kernel caches the ACL. The second listing runs
    // within the entry timeout: full entries would make the kernel forget every file's ACL and
    // ask for both again (2 per file); plain names leave it the one it never caches.
    assert.ok(count(twice, 'GETXATTR') - count(once, 'GETXATTR') < 1.5 * N, `warm listing asked for the ACLs again:\n${once}\n${twice}`);
    assert.ok(count(twice, 'LOOKUP') <= 1, twice);
    // A directory of many chunks: `ls -l` gets entries on every chunk (the kernel's auto mode
    // sees the names used), `find`, which uses no name, only on the first.
    const big = await run((dir) => {
      const many = join(dir, '..', 'many');
      mkdirSync(many);
      for (let i = 0; i < 1500; i++) writeFileSync(join(many, `n${i}`), '');
    });
    assert.ok(count(big, 'CREATE') >= 1500, big);
    const lsMany = await run((dir) => assert.equal(sh(`ls -l ${join(dir, '..', 'many')} | wc -l`).out.trim(), '1501'));
    assert.ok(count(lsMany, 'READDIRPLUS') > 2 && count(lsMany, 'READDIR') === 0, lsMany);
    assert.ok(count(lsMany, 'LOOKUP') < 150, `a LOOKUP per name:\n${lsMany}`);
    const findMany = await run((dir) => assert.equal(sh(`find ${join(dir, '..', 'many')} | wc -l`).out.trim(), '1501'));
    assert.ok(count(findMany, 'READDIR') > 0, `find got entries on every chunk:\n${findMany}`);
    // The kernel drops its inodes (FORGET of every count the listing took) and lists again: a
    // count too few would have dropped a node it still holds (ESTALE), and the sizes must hold.
    await run((dir) => {
      ls(dir);
      assert.equal(sh('sync; echo 2 > /proc/sys/vm/drop_caches').code, 0);
      for (const name of readdirSync(dir)) assert.equal(lstatSync(join(dir, name)).size, 37 * Number(name.slice(1)) + 5, name);
      ls(dir);
    });
  } finally {
    await m.cleanup();
    work.cleanup();
  }
});
