/**
 * ecryptfs-setup-swap against a loop device and a swap file made for the test, in a temporary
 * root (its own proc/swaps, etc/fstab and etc/crypttab): the machine's swap and /etc are untouched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { promises as fsp, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setupSwap, realRunner, type Runner, type SwapOptions } from '../../src/cli/setup-swap.js';
import { tempDir } from '../helpers/fixtures.js';

const skip = process.getuid?.() !== 0 ? 'needs root for a loop device' : spawnSync('sh', ['-c', 'command -v losetup && command -v mkswap && command -v blkid']).status !== 0 ? 'losetup/mkswap/blkid missing' : false;

test('encrypts a swap partition (loop device), skips a swap file, keeps backups; -n changes nothing', { skip }, async () => {
  const t = tempDir('ecryptfs-swap-');
  const img = join(t.path, 'swap.img');
  const swapfile = join(t.path, 'swapfile');
  execFileSync('truncate', ['-s', '16M', img, swapfile]);
  execFileSync('mkswap', [img], { stdio: 'ignore' });
  execFileSync('mkswap', [swapfile], { stdio: 'ignore' });
  const loop = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8' }).trim();
  try {
    const uuid = execFileSync('blkid', ['-o', 'value', '-s', 'UUID', loop], { encoding: 'utf8' }).trim();
    const root = join(t.path, 'root');
    await fsp.mkdir(join(root, 'proc'), { recursive: true });
    await fsp.mkdir(join(root, 'etc'));
    await fsp.writeFile(join(root, 'proc/swaps'), `Filename\tType\tSize\tUsed\tPriority\n${loop}  partition\t16380\t0\t-2\n${swapfile}  file\t16380\t0\t-3\n`);
    const fstab = `UUID=1234-abcd / ext4 defaults 0 1\nUUID=${uuid} none swap sw 0 0\n`;
    await fsp.writeFile(join(root, 'etc/fstab'), fstab);
    const ran: string[] = [];
    // Swap on/off and cryptdisks are recorded, never run: the machine's swap is not touched.
    const run: Runner = (cmd, args) => (cmd === 'blkid' || cmd === 'dmsetup' ? realRunner(cmd, args) : (ran.push(`${cmd} ${args.join(' ')}`), Promise.resolve({ code: 0, stdout: '' })));
    let out = '';
    let err = '';
    const opts = (o: Partial<SwapOptions>): SwapOptions => ({ root, force: false, dryRun: false, noReload: false, run, confirm: async () => 'y', out: (s) => (out += s), err: (s) => (err += s), ...o });
    assert.equal(await setupSwap(opts({ dryRun: true })), 0);
    assert.match(out, new RegExp(`would add to /etc/crypttab: cryptswap1 UUID=${uuid} /dev/urandom swap,offset=1024,cipher=aes-xts-plain64`));
    assert.equal(await fsp.readFile(join(root, 'etc/fstab'), 'utf8'), fstab, '-n changes nothing');
    assert.ok(!readdirSync(join(root, 'etc')).includes('crypttab'));
    out = err = '';
    assert.equal(await setupSwap(opts({})), 0);
    assert.match(err, new RegExp(`WARNING: \\[${swapfile}\\] is a swap file`));
    assert.match(err, /Commented out your unencrypted swap from \/etc\/fstab/);
    assert.match(out, /HIBERNATE\/RESUME/);
    assert.match(out, /Successfully encrypted swap!/);
    assert.equal(await fsp.readFile(join(root, 'etc/crypttab'), 'utf8'), `cryptswap1 UUID=${uuid} /dev/urandom swap,offset=1024,cipher=aes-xts-plain64\n`);
    assert.equal(await fsp.readFile(join(root, 'etc/fstab'), 'utf8'), `UUID=1234-abcd / ext4 defaults 0 1\n#UUID=${uuid} none swap sw 0 0\n/dev/mapper/cryptswap1 none swap sw 0 0\n`);
    assert.ok(readdirSync(join(root, 'etc')).some((f) => f.startsWith('fstab.ecryptfs-setup-swap.')), 'fstab backup kept');
    assert.deepEqual(ran, ['swapoff -a', '/etc/init.d/cryptdisks restart', 'swapon -a']);
    // Running again: the swap already has a crypttab entry.
    err = '';
    assert.equal(await setupSwap(opts({ force: true })), 0);
    assert.match(err, /already has an entry in \/etc\/crypttab, skipping/);
    // Answering no aborts.
    await fsp.writeFile(join(root, 'etc/crypttab'), '');
    out = '';
    assert.equal(await setupSwap(opts({ confirm: async () => 'n' })), 0);
    assert.match(out, /INFO: Aborting\./);
  } finally {
    spawnSync('losetup', ['-d', loop]);
    t.cleanup();
  }
});
