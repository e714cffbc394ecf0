/**
 * Crashes and full disks: kill -9 the mount daemon or the writing process at random moments
 * during heavy writes; fill a small lower filesystem; mount a read-only lower. Afterwards every
 * lower file is a valid eCryptfs file (or absent), fsynced data is intact, and everything reads.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fsp, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mountSkipReason, mountVolume, sh, isMounted } from '../mount/harness.js';
import { listMountStates } from '../../src/mount/state.js';
import { KeyRing } from '../../src/volume/keyring.js';
import { Volume } from '../../src/volume/volume.js';
import { fsck, fsckFailed } from '../../src/volume/fsck.js';
import { pattern } from './writer.js';
import { tempDir } from '../helpers/fixtures.js';

const skip = mountSkipReason();
const WRITER = fileURLToPath(new URL('./writer.js', import.meta.url));
const ROUNDS = Number(process.env.ECRYPTFS_CRASH_ROUNDS ?? 50);
const PASS = 'mount-test-passphrase';

async function checkLower(lower: string, synced: Map<string, number>): Promise<void> {
  const ring = new KeyRing();
  await ring.addPassphrase(PASS);
  const vol = await Volume.open(lower, ring, { readOnly: true });
  const listing = (await fsp.readdir(lower)).join(', ');
  assert.ok(vol.filenameEncryption || synced.size === 0, `filename key detected from the lower names [${listing}]`);
  const report = await fsck(vol);
  assert.ok(!fsckFailed(report), `fsck after the crash: ${JSON.stringify(report.entries.filter((e) => e.verdict !== 'ok'))}`);
  for (const [name, size] of synced) {
    const data = await vol.readFile(name);
    assert.ok(data.length >= size, `${name}: ${data.length} bytes, ${size} were fsynced`);
    const f = Number(name.slice(4));
    const want = pattern(f, 0, data.length);
    if (!data.equals(want)) {
      let i = 0;
      while (data[i] === want[i]) i++;
      assert.fail(`${name}: byte ${i} differs (${data[i]} != ${want[i]})`);
    }
  }
  vol.close();
}

/** Run the writer; after `killAfterMs`, `kill` is called with a function that kills the writer. */
function runWriter(dir: string, killAfterMs: number, kill: (killWriter: () => void) => void): Promise<Map<string, number>> {
  return new Promise((resolve) => {
    const synced = new Map<string, number>();
    const w = spawn(process.execPath, [WRITER, dir, String(statSync(dir).dev)], { stdio: ['ignore', 'pipe', 'ignore'] });
    let buf = '';
    w.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const m = /^synced (\S+) (\d+)$/.exec(buf.slice(0, i));
        if (m) synced.set(m[1], Number(m[2]));
        buf = buf.slice(i + 1);
      }
    });
    setTimeout(() => kill(() => w.kill('SIGKILL')), killAfterMs);
    const timer = setTimeout(() => w.kill('SIGKILL'), killAfterMs + 5000);
    w.on('exit', () => {
      clearTimeout(timer);
      resolve(synced);
    });
  });
}

test(`kill -9 of the daemon or of the writer at random moments (${ROUNDS} rounds): lower stays valid, fsynced data intact`, { skip }, async () => {
  for (let round = 0; round < ROUNDS; round++) {
    const m = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y', { passphrase: PASS });
    try {
      const killDaemon = round % 2 === 0;
      const pid = (await listMountStates()).find((s) => s.upper === m.upper)?.pid;
      assert.ok(pid);
      const synced = await runWriter(m.upper, 50 + Math.floor(Math.random() * 400), (killWriter) => {
        if (killDaemon) process.kill(pid, 'SIGKILL');
        else killWriter();
      });
      if (killDaemon) {
        // The watchdog clears the dead mount.
        for (let i = 0; i < 50 && isMounted(m.upper); i++) await new Promise((r) => setTimeout(r, 100));
        assert.ok(!isMounted(m.upper), 'a dead daemon leaves no mount behind');
      } else await m.umount();
      await checkLower(m.lower, synced);
    } finally {
      await m.cleanup();
    }
  }
});

test('a full lower filesystem: ENOSPC reaches the writer and nothing earlier is damaged', { skip }, async () => {
  const t = tempDir('ecryptfs-enospc-');
  const small = join(t.path, 'small');
  await fsp.mkdir(small);
  sh(`mount -t tmpfs -o size=3m tmpfs ${small}`);
  try {
    const m = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n', { lower: small, passphrase: PASS });
    try {
      await fsp.writeFile(join(m.upper, 'first'), Buffer.alloc(1024 * 1024, 0x61));
      const r = sh(`dd if=/dev/zero of=${join(m.upper, 'second')} bs=64k count=100 2>&1`);
      assert.notEqual(r.code, 0);
      assert.match(r.out, /No space left on device/);
      assert.ok((await fsp.readFile(join(m.upper, 'first'))).equals(Buffer.alloc(1024 * 1024, 0x61)));
      const second = await fsp.readFile(join(m.upper, 'second'));
      assert.ok(second.equals(Buffer.alloc(second.length)), 'what the size field covers reads back');
    } finally {
      await m.cleanup();
    }
    const ring = new KeyRing();
    await ring.addPassphrase(PASS);
    const vol = await Volume.open(small, ring, { readOnly: true, fnekSig: null });
    assert.ok(!fsckFailed(await fsck(vol)));
    vol.close();
  } finally {
    sh(`umount ${small}`);
    t.cleanup();
  }
});

test('a read-only lower directory mounts read-only: reads work, writes fail with EROFS', { skip }, async () => {
  const m0 = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y', { passphrase: PASS });
  await fsp.writeFile(join(m0.upper, 'kept'), 'kept data');
  await m0.umount();
  const ro = join(m0.root, 'ro');
  await fsp.mkdir(ro);
  sh(`mount --bind -o ro ${m0.lower} ${ro} && mount -o remount,bind,ro ${ro}`);
  try {
    const m = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y,ro', { lower: ro, passphrase: PASS });
    try {
      assert.equal(await fsp.readFile(join(m.upper, 'kept'), 'utf8'), 'kept data');
      await assert.rejects(fsp.writeFile(join(m.upper, 'new'), 'x'), { code: 'EROFS' });
      await assert.rejects(fsp.appendFile(join(m.upper, 'kept'), 'x'), { code: 'EROFS' });
    } finally {
      await m.cleanup();
    }
  } finally {
    sh(`umount ${ro}`);
    await m0.cleanup();
  }
});

