/**
 * ecryptfs-setup-swap [-f|--force] [-n|--dry-run] [--no-reload] [--root DIR]: encrypt the active
 * swap devices with a random key at every boot (ecryptfs-utils 111's approach): for each usable
 * swap partition, comment it out of /etc/fstab and add
 *   cryptswapN UUID=<uuid> /dev/urandom swap,offset=1024,cipher=aes-xts-plain64   (/etc/crypttab)
 *   /dev/mapper/cryptswapN none swap sw 0 0                                       (/etc/fstab)
 * keeping backups of both files. Swap files, RAM devices, swap that is already dm-crypt or already
 * in /etc/crypttab are skipped with a warning, as the real script does (which also lets a swap file
 * through; encrypted swap needs a block device). -n shows what would change and changes nothing;
 * --no-reload (the real script's -n) writes the files but does not restart swap.
 * --root DIR (or ECRYPTFS_ROOT) reads proc/swaps and etc/ under DIR: for tests and chroots.
 */
import { spawn } from 'node:child_process';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { ask } from './prompt.js';
import { runMain } from './run.js';

export interface Runner {
  (cmd: string, args: string[]): Promise<{ code: number; stdout: string }>;
}

export const realRunner: Runner = (cmd, args) =>
  new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', () => resolve({ code: 127, stdout: '' }));
    p.on('close', (code) => resolve({ code: code ?? 1, stdout: out }));
  });

export interface SwapOptions {
  root: string;
  force: boolean;
  dryRun: boolean;
  noReload: boolean;
  run: Runner;
  confirm(prompt: string): Promise<string>;
  out(s: string): void;
  err(s: string): void;
}

const info = (o: SwapOptions, m: string) => o.out(`INFO: ${m}\n`);
const warn = (o: SwapOptions, m: string) => o.err(`WARNING: ${m}\n`);

async function isBlockDevice(o: SwapOptions, dev: string): Promise<boolean> {
  const st = await fsp.stat(dev).catch(() => undefined);
  return !!st?.isBlockDevice();
}

export async function setupSwap(o: SwapOptions): Promise<number> {
  const r = (p: string) => join(o.root, p);
  const swapsText = await fsp.readFile(r('proc/swaps'), 'utf8').catch(() => '');
  const swaps = swapsText.split('\n').filter((l) => l.startsWith('/')).map((l) => l.split(/\s+/)[0]);
  if (swaps.length === 0) {
    info(o, 'You do not currently have any swap space defined.');
    o.out('\nYou can create a swap file by doing:\n $ sudo dd if=/dev/zero of=/swapfile count=<size>\n $ sudo mkswap /swapfile\n $ sudo swapon /swapfile\n\nBut encrypted swap needs a partition or a logical volume: see cryptsetup(8).\n');
    return 0;
  }
  const crypttab = await fsp.readFile(r('etc/crypttab'), 'utf8').catch(() => '');
  const usable: Array<{ dev: string; uuid: string }> = [];
  for (const dev of swaps) {
    const type = (await o.run('blkid', ['-o', 'value', '-s', 'TYPE', dev])).stdout.trim();
    if (type !== 'swap') {
      warn(o, `[${dev}] does not appear to be swap space, skipping.`);
      continue;
    }
    if (/^\/dev\/(z?ram)/.test(dev)) {
      warn(o, `[${dev}] is a RAM device, skipping.`);
      continue;
    }
    if (!(await isBlockDevice(o, dev))) {
      warn(o, `[${dev}] is a swap file, not a partition; a random-key encrypted swap needs a block device, skipping.`);
      continue;
    }
    const table = await o.run('dmsetup', ['table', dev]);
    if (table.code === 0 && / crypt /.test(table.stdout)) {
      warn(o, `[${dev}] already appears to be encrypted, skipping.`);
      continue;
    }
    const base = dev.split('/').pop()!;
    const uuid = (await o.run('blkid', ['-o', 'value', '-s', 'UUID', dev])).stdout.trim();
    if (crypttab.split('\n').some((l) => (l.startsWith(base) || (uuid && l.includes(uuid)) || l.includes(dev)) && /swap/.test(l) && !l.startsWith('#'))) {
      warn(o, `[${dev}] already has an entry in /etc/crypttab, skipping.`);
      continue;
    }
    usable.push({ dev, uuid });
  }
  if (usable.length === 0) {
    warn(o, 'There were no usable swap devices to be encrypted.  Exiting.');
    return 0;
  }
  if (!o.force && !o.dryRun) {
    o.out('\nWARNING:\nAn encrypted swap is required to help ensure that encrypted files are not leaked to disk in an unencrypted format.\n\n');
    o.out('HOWEVER, THE SWAP ENCRYPTION CONFIGURATION PRODUCED BY THIS PROGRAM WILL BREAK HIBERNATE/RESUME ON THIS SYSTEM!\n\nNOTE: Your suspend/resume capabilities will not be affected.\n\n');
    const a = (await o.confirm('Do you want to proceed with encrypting your swap? [y/N]: ')).trim();
    if (a !== 'y' && a !== 'Y') {
      o.out('\n');
      info(o, 'Aborting.');
      return 0;
    }
  }
  let fstab = await fsp.readFile(r('etc/fstab'), 'utf8').catch(() => '');
  let newCrypttab = crypttab;
  let n = 0;
  for (const { dev, uuid } of usable) {
    info(o, `Setting up swap: [${dev}]`);
    for (const target of [uuid ? `UUID=${uuid}` : '', dev].filter(Boolean)) {
      const re = new RegExp(`^${target.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}\\s+`, 'm');
      if (re.test(fstab)) {
        fstab = fstab.replace(re, `#${target} `);
        warn(o, 'Commented out your unencrypted swap from /etc/fstab');
      }
    }
    do n++;
    while (newCrypttab.includes(`cryptswap${n} `) || (await fsp.stat(r(`dev/mapper/cryptswap${n}`)).then(() => true, () => false)));
    const line = `cryptswap${n} ${uuid ? `UUID=${uuid}` : dev} /dev/urandom swap,offset=1024,cipher=aes-xts-plain64`;
    newCrypttab += (newCrypttab === '' || newCrypttab.endsWith('\n') ? '' : '\n') + line + '\n';
    fstab += (fstab === '' || fstab.endsWith('\n') ? '' : '\n') + `/dev/mapper/cryptswap${n} none swap sw 0 0\n`;
    if (o.dryRun) o.out(`would add to /etc/crypttab: ${line}\nwould add to /etc/fstab: /dev/mapper/cryptswap${n} none swap sw 0 0\n`);
  }
  if (o.dryRun) {
    info(o, 'Dry run (-n): nothing was changed.');
    return 0;
  }
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  await fsp.mkdir(r('etc'), { recursive: true });
  for (const [file, text] of [['etc/fstab', fstab], ['etc/crypttab', newCrypttab]] as const) {
    const old = await fsp.readFile(r(file)).catch(() => undefined);
    if (old) await fsp.writeFile(r(`${file}.ecryptfs-setup-swap.${stamp}`), old);
    const tmp = r(`${file}.tmp-${process.pid}`);
    await fsp.writeFile(tmp, text, { mode: 0o644 });
    await fsp.rename(tmp, r(file));
  }
  info(o, `Backups of /etc/fstab and /etc/crypttab: *.ecryptfs-setup-swap.${stamp}`);
  if (!o.noReload) {
    for (const [cmd, args] of [['swapoff', ['-a']], ['/etc/init.d/cryptdisks', ['restart']], ['swapon', ['-a']]] as const) {
      const res = await o.run(cmd, [...args]);
      if (res.code !== 0) warn(o, `${cmd} ${args.join(' ')} failed (exit ${res.code}); reboot to use the encrypted swap`);
    }
  }
  info(o, 'Successfully encrypted swap!');
  return 0;
}

export function setupSwapMain(): void {
  const args = process.argv.slice(2);
  let root = process.env.ECRYPTFS_ROOT ?? '/';
  const o: SwapOptions = {
    root, force: false, dryRun: false, noReload: false, run: realRunner,
    confirm: (p) => ask(p), out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s),
  };
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-f' || a === '--force') o.force = true;
    else if (a === '-n' || a === '--dry-run') o.dryRun = true;
    else if (a === '--no-reload') o.noReload = true;
    else if (a === '--root') root = o.root = args[++i] ?? '/';
    else {
      process.stderr.write(`\nUsage:\n  ecryptfs-setup-swap [-f|--force] [-n|--dry-run] [--no-reload] [--root DIR]\n\n`);
      process.exitCode = 1;
      return;
    }
  }
  if (o.root === '/' && process.getuid?.() !== 0) {
    process.stderr.write("ERROR: This program must be run with 'sudo', or as root\n");
    process.exitCode = 1;
    return;
  }
  runMain('ecryptfs-setup-swap', () => setupSwap(o));
}
