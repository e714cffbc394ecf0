/** Secret hygiene: passphrases never in argv or environments, never in the lower dir, keys zeroed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fsp, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mountSkipReason, mountVolume } from '../mount/harness.js';
import { KeyRing } from '../../src/volume/keyring.js';
import { Volume } from '../../src/volume/volume.js';
import { tempDir } from '../helpers/fixtures.js';

const skip = mountSkipReason();
const PASS = 'Sup3r-Secret-Passphrase-For-Hygiene';

function processTexts(): Array<{ pid: string; what: string; text: Buffer }> {
  const out: Array<{ pid: string; what: string; text: Buffer }> = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    for (const what of ['cmdline', 'environ']) {
      try {
        out.push({ pid, what, text: readFileSync(`/proc/${pid}/${what}`) });
      } catch {
        // process gone or not readable
      }
    }
  }
  return out;
}

async function allLowerBytes(dir: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  const walk = async (d: string) => {
    for (const e of await fsp.readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      parts.push(Buffer.from(e.name));
      if (e.isDirectory()) await walk(p);
      else if (e.isSymbolicLink()) parts.push(Buffer.from(await fsp.readlink(p)));
      else if (e.isFile()) parts.push(await fsp.readFile(p));
    }
  };
  await walk(dir);
  return Buffer.concat(parts);
}

test('while mounted, no process has the passphrase in its argv or environment', { skip }, async () => {
  const m = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y', { passphrase: PASS });
  try {
    await fsp.writeFile(join(m.upper, 'f'), 'x');
    const leaks = processTexts().filter((p) => p.text.includes(Buffer.from(PASS)));
    assert.deepEqual(leaks.map((l) => `${l.pid}/${l.what}`), []);
  } finally {
    await m.cleanup();
  }
});

test('no clear byte sequence of a file, its name or a link target appears in the lower directory', { skip }, async () => {
  const m = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y', { passphrase: PASS });
  try {
    const clear = Buffer.from('The quick brown fox jumps over the lazy dog; clear text that must not leak. '.repeat(2000));
    await fsp.mkdir(join(m.upper, 'VisibleDirectoryName'));
    await fsp.writeFile(join(m.upper, 'VisibleDirectoryName', 'VisibleFileName.txt'), clear);
    await fsp.symlink('VisibleLinkTarget', join(m.upper, 'link'));
    await m.umount();
    const lower = await allLowerBytes(m.lower);
    for (let i = 0; i + 16 <= 150; i += 7) assert.ok(!lower.includes(clear.subarray(i, i + 16)), `clear window at ${i}`);
    for (const s of ['VisibleDirectoryName', 'VisibleFileName', 'VisibleLinkTarget', PASS]) assert.ok(!lower.includes(Buffer.from(s)), s);
  } finally {
    await m.cleanup();
  }
});

test('closing a volume zeroes every key it held; closing a file zeroes its file key', async () => {
  const t = tempDir();
  try {
    const ring = new KeyRing();
    const [k, f] = await ring.addPassphrase(PASS);
    const vol = await Volume.open(t.path, ring, { sigs: [k.sig], fnekSig: f.sig });
    await vol.writeFile('a', Buffer.from('data'));
    const file = await vol.openFile('a');
    const content = (file as unknown as { content: { key: Buffer } }).content;
    await file.close();
    assert.ok(content.key.equals(Buffer.alloc(content.key.length)), 'file key zeroed');
    vol.close();
    assert.ok(k.key.equals(Buffer.alloc(64)) && f.key.equals(Buffer.alloc(64)), 'auth-token keys zeroed');
    assert.equal(ring.sigs.length, 0);
  } finally {
    t.cleanup();
  }
});
