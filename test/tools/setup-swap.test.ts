/**
 * ecryptfs-setup-swap against a loop device and a swap file made for the test, in a temporary
 * root (its own proc/swaps, etc/fstab and etc/crypttab). Only blkid and dmsetup run for real
 * (they only read); swapoff, swapon, cryptdisks, systemctl and sfdisk are recorded, never run,
 * so the machine's swap and /etc are untouched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { promises as fsp, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { setupSwap, realRunner, type Runner, type SwapOptions } from '../../src/cli/setup-swap.js';
import { tempDir } from '../helpers/fixtures.js';
import { tool } from '../cli/run.js';

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const skip = process.getuid?.() !== 0 ? 'needs root for a loop device' : !['losetup', 'mkswap', 'blkid'].every(has) ? 'losetup/mkswap/blkid (util-linux) missing' : false;
const skipFile = !['mkswap', 'blkid'].every(has) ? 'mkswap/blkid (util-linux) missing' : false;

interface World {
  root: string;
  ran: string[];
  out: string;
  err: string;
  opts(o?: Partial<SwapOptions>): SwapOptions;
}

async function world(dir: string, swaps: string, fstab: string, extra: Record<string, string> = {}): Promise<World> {
  const root = join(dir, 'root');
  await fsp.mkdir(join(root, 'proc'), { recursive: true });
  await fsp.mkdir(join(root, 'etc'), { recursive: true });
  await fsp.writeFile(join(root, 'proc/swaps'), `Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n${swaps}`);
  await fsp.writeFile(join(root, 'etc/fstab'), fstab);
  for (const [p, text] of Object.entries(extra)) {
    await fsp.mkdir(join(root, p, '..'), { recursive: true });
    await fsp.writeFile(join(root, p), text);
  }
  const w: World = {
    root,
    ran: [],
    out: '',
    err: '',
    opts: (o = {}) => ({ root, force: false, dryRun: false, noReload: false, run, confirm: async () => 'y', out: (s) => (w.out += s), err: (s) => (w.err += s), ...o }),
  };
  const run: Runner = (cmd, args) => {
    if (cmd === 'blkid' || cmd === 'dmsetup') return realRunner(cmd, args);
    w.ran.push(`${cmd} ${args.join(' ')}`);
    return Promise.resolve({ code: 0, stdout: '' });
  };
  return w;
}

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
    const fstab = `UUID=1234-abcd / ext4 defaults 0 1\nUUID=${uuid} none swap sw 0 0\n`;
    const w = await world(t.path, `${loop}  partition\t16380\t0\t-2\n${swapfile}  file\t16380\t0\t-3\n`, fstab, { 'etc/init.d/cryptdisks': '#!/bin/sh\n' });
    const crypt = `cryptswap1 UUID=${uuid} /dev/urandom swap,offset=1024,cipher=aes-xts-plain64`;

    assert.equal(await setupSwap(w.opts({ dryRun: true })), 0);
    assert.ok(w.out.includes(`would add to /etc/crypttab: ${crypt}\n`), w.out);
    assert.ok(w.out.includes('would add to /etc/fstab: /dev/mapper/cryptswap1 none swap sw 0 0\n'));
    assert.match(w.out, /INFO: Dry run \(-n\): nothing was changed\./);
    assert.equal(await fsp.readFile(join(w.root, 'etc/fstab'), 'utf8'), fstab, '-n changes nothing');
    assert.deepEqual(readdirSync(join(w.root, 'etc')).sort(), ['fstab', 'init.d']);
    assert.ok(!w.ran.some((c) => /swapo|cryptdisks/.test(c)), 'nothing run by -n');

    w.out = w.err = '';
    assert.equal(await setupSwap(w.opts()), 0);
    assert.ok(w.err.includes(`WARNING: [${swapfile}] is a swap file, not a partition`), w.err);
    assert.match(w.err, /WARNING: Commented out your unencrypted swap from \/etc\/fstab/);
    assert.match(w.out, /HOWEVER, THE SWAP ENCRYPTION CONFIGURATION PRODUCED BY THIS PROGRAM WILL BREAK HIBERNATE\/RESUME ON THIS SYSTEM!/);
    assert.ok(w.out.includes(`INFO: Setting up swap: [${loop}]\n`));
    assert.match(w.out, /INFO: Successfully encrypted swap!\n$/);
    assert.equal(await fsp.readFile(join(w.root, 'etc/crypttab'), 'utf8'), `${crypt}\n`);
    assert.equal(await fsp.readFile(join(w.root, 'etc/fstab'), 'utf8'), `UUID=1234-abcd / ext4 defaults 0 1\n#UUID=${uuid} none swap sw 0 0\n/dev/mapper/cryptswap1 none swap sw 0 0\n`);
    const backup = readdirSync(join(w.root, 'etc')).find((f) => f.startsWith('fstab.ecryptfs-setup-swap.'));
    assert.ok(backup, 'fstab backup kept');
    assert.equal(await fsp.readFile(join(w.root, 'etc', backup), 'utf8'), fstab, 'the backup is the old fstab');
    assert.deepEqual(w.ran.filter((c) => !/^(udevadm|cryptsetup) /.test(c)), ['swapoff -a', '/etc/init.d/cryptdisks restart', 'swapon -a']);

    // Again: the swap has a crypttab entry now, and nothing more is written.
    w.out = w.err = '';
    assert.equal(await setupSwap(w.opts({ force: true })), 0);
    assert.ok(w.err.includes(`WARNING: [${loop}] already has an entry in /etc/crypttab, skipping.`));
    assert.match(w.err, /WARNING: There were no usable swap devices to be encrypted\. {2}Exiting\./);
    assert.equal(await fsp.readFile(join(w.root, 'etc/crypttab'), 'utf8'), `${crypt}\n`);

    // Answering no aborts; a name taken in crypttab is not reused; resume is named; systemd path without the init script.
    await fsp.writeFile(join(w.root, 'etc/crypttab'), 'cryptswap1 /dev/sdz9 /dev/urandom swap\n');
    await fsp.writeFile(join(w.root, 'etc/fstab'), `/dev/mapper/cryptswap1 none swap sw 0 0\n${loop} none swap sw 0 0`);
    await fsp.mkdir(join(w.root, 'etc/initramfs-tools/conf.d'), { recursive: true });
    await fsp.writeFile(join(w.root, 'etc/initramfs-tools/conf.d/resume'), `RESUME=UUID=${uuid}\n`);
    await fsp.rm(join(w.root, 'etc/init.d'), { recursive: true });
    w.out = w.err = '';
    assert.equal(await setupSwap(w.opts({ confirm: async () => 'n' })), 0);
    assert.match(w.out, /\n\nINFO: Aborting\.\n/);
    assert.match(w.err, /is your hibernation \(resume\) device/);
    w.ran.length = 0;
    assert.equal(await setupSwap(w.opts({ force: true })), 0);
    assert.equal(await fsp.readFile(join(w.root, 'etc/crypttab'), 'utf8'), `cryptswap1 /dev/sdz9 /dev/urandom swap\n${crypt.replace('cryptswap1', 'cryptswap2')}\n`);
    assert.equal(await fsp.readFile(join(w.root, 'etc/fstab'), 'utf8'), `/dev/mapper/cryptswap1 none swap sw 0 0\n#${loop} none swap sw 0 0\n/dev/mapper/cryptswap2 none swap sw 0 0\n`);
    assert.deepEqual(w.ran.filter((c) => !/^(udevadm|cryptsetup) /.test(c)), ['swapoff -a', 'systemctl daemon-reload', 'systemctl start cryptsetup.target', 'swapon -a']);
  } finally {
    spawnSync('losetup', ['-d', loop]);
    t.cleanup();
  }
});

test('no usable swap: a swap file alone, something not swap, no swap at all; cryptsetup missing is an error', { skip: skipFile }, async () => {
  const t = tempDir('ecryptfs-swap-');
  try {
    const swapfile = join(t.path, 'swapfile');
    const notswap = join(t.path, 'notswap');
    execFileSync('truncate', ['-s', '1M', swapfile, notswap]);
    execFileSync('mkswap', [swapfile], { stdio: 'ignore' });
    const fstab = `${swapfile} none swap sw 0 0\n`;
    const w = await world(t.path, `${swapfile} file 1020 0 -2\n${notswap} file 1020 0 -3\n`, fstab);
    assert.equal(await setupSwap(w.opts({ force: true })), 0);
    assert.ok(w.err.includes(`WARNING: [${notswap}] does not appear to be swap space, skipping.\n`));
    assert.ok(w.err.includes(`WARNING: [${swapfile}] is a swap file`));
    assert.match(w.err, /There were no usable swap devices to be encrypted/);
    assert.equal(await fsp.readFile(join(w.root, 'etc/fstab'), 'utf8'), fstab);
    assert.deepEqual(w.ran, ['cryptsetup --version']);

    await fsp.writeFile(join(w.root, 'proc/swaps'), 'Filename\tType\tSize\tUsed\tPriority\n');
    w.out = '';
    assert.equal(await setupSwap(w.opts()), 0);
    assert.match(w.out, /^INFO: You do not currently have any swap space defined\./);

    const missing: Runner = async (cmd, args) => (cmd === 'cryptsetup' ? { code: 127, stdout: '' } : realRunner(cmd, args));
    await assert.rejects(setupSwap(w.opts({ run: missing })), /Please install 'cryptsetup'/);
  } finally {
    t.cleanup();
  }
});

test('the command: -n --root runs for real on a temporary root; bad options print the usage', { skip: skipFile }, async () => {
  const t = tempDir('ecryptfs-swap-');
  try {
    const swapfile = join(t.path, 'swapfile');
    execFileSync('truncate', ['-s', '1M', swapfile]);
    execFileSync('mkswap', [swapfile], { stdio: 'ignore' });
    const w = await world(t.path, `${swapfile} file 1020 0 -2\n`, 'x');
    const r = await tool('ecryptfs-setup-swap', ['-n', '--root', w.root]);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stderr.includes(`WARNING: [${swapfile}] is a swap file`), r.stderr);
    assert.equal(await fsp.readFile(join(w.root, 'etc/fstab'), 'utf8'), 'x');
    const bad = await tool('ecryptfs-setup-swap', ['--bogus']);
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr, '\nUsage:\n  ecryptfs-setup-swap [-f|--force] [-n|--dry-run] [--no-reload] [--root DIR]\n\n');
  } finally {
    t.cleanup();
  }
});
