/**
 * ecryptfs-setup-swap [-f|--force] [-n|--dry-run] [--no-reload] [--root DIR]: encrypt the active
 * swap partitions with a random key at every boot, as ecryptfs-utils 111 does: for each usable
 * swap in /proc/swaps, comment it out of /etc/fstab (by UUID=, LABEL=, device or udev symlink),
 * mark a GPT partition "no auto" (so systemd does not activate it in the clear), and add
 *   cryptswapN UUID=<uuid> /dev/urandom swap,offset=1024,cipher=aes-xts-plain64   (/etc/crypttab)
 *   /dev/mapper/cryptswapN none swap sw 0 0                                       (/etc/fstab)
 * keeping a dated backup of both files, then swapoff -a, restart cryptdisks, swapon -a.
 * Skipped with a warning, as the script does: not swap (blkid), RAM/zram devices, swap already on
 * dm-crypt or already in /etc/crypttab. Also skipped (the script lets them through and writes a
 * crypttab line that cannot work): swap files, since UUID= only names block devices.
 * Hibernation from a swap that becomes random-keyed breaks: the script says so in its question;
 * we also name the resume setting that points at it.
 * -n is a dry run here (the issue asks for it; the script's -n is --no-reload, kept as that name).
 * --root DIR (or ECRYPTFS_ROOT) reads DIR/proc/swaps and edits DIR/etc/: for tests and chroots.
 * Every command goes through an injectable Runner so tests never touch the machine's swap.
 */
import { run } from '../sys/run.js';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { EcryptfsError } from '../errors.js';
import { appendLine, commentOut, crypttabLine, fstabLine, hasCrypttabEntry, nextCryptswap, resumeNames, splitPartition } from '../setup/fstab.js';
import { ask } from './prompt.js';
import { runMain } from './run.js';
import { writeFileAtomic } from '../lower/atomic.js';

export interface Runner {
  (cmd: string, args: string[], input?: string): Promise<{ code: number; stdout: string }>;
}

/** Runs a command for real; code 127 when it is not installed. */
export const realRunner: Runner = async (cmd, args, input) => {
  const r = await run(cmd, args, { input, stderr: 'ignore' });
  return { code: r.code, stdout: r.error ? '' : r.stdout.toString() };
};

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

interface Swap {
  dev: string;
  uuid: string | undefined;
}

const exists = (p: string) => fsp.stat(p).then(() => true, () => false);

export async function setupSwap(o: SwapOptions): Promise<number> {
  const r = (p: string) => join(o.root, p);
  const info = (m: string) => o.out(`INFO: ${m}\n`);
  const warn = (m: string) => o.err(`WARNING: ${m}\n`);
  const blkid = async (dev: string, tag: string, probe = false) => (await o.run('blkid', [...(probe ? ['-p'] : []), '-o', 'value', '-s', tag, dev])).stdout.trim() || undefined;

  if ((await o.run('cryptsetup', ['--version'])).code === 127) {
    if (!o.dryRun) throw new EcryptfsError('EINVAL', "Please install 'cryptsetup' (apt-get install cryptsetup): it sets up the encrypted swap at boot");
    warn("Please install 'cryptsetup' before running this for real");
  }
  const swapsText = await fsp.readFile(r('proc/swaps'), 'utf8').catch(() => '');
  const active = swapsText.split('\n').filter((l) => l.startsWith('/')).map((l) => l.split(/\s+/));
  if (active.length === 0) {
    info('You do not currently have any swap space defined.');
    o.out('\nAn encrypted swap needs a swap partition or logical volume: create one, mkswap it, add it to /etc/fstab, swapon it,\nand then re-run ecryptfs-setup-swap\n\n');
    return 0;
  }
  const crypttab = await fsp.readFile(r('etc/crypttab'), 'utf8').catch(() => '');
  const cryptroot = await fsp.readFile(r('etc/initramfs-tools/conf.d/cryptroot'), 'utf8').catch(() => '');
  const resume = [
    await fsp.readFile(r('etc/initramfs-tools/conf.d/resume'), 'utf8').catch(() => ''),
    await fsp.readFile(r('proc/cmdline'), 'utf8').catch(() => ''),
  ].join('\n');
  const usable: Swap[] = [];
  for (const [dev, type] of active) {
    if ((await blkid(dev, 'TYPE')) !== 'swap') {
      warn(`[${dev}] does not appear to be swap space, skipping.`);
      continue;
    }
    if (dev.startsWith('/dev/ram') || dev.startsWith('/dev/zram')) {
      warn(`[${dev}] is a RAM device, skipping.`);
      continue;
    }
    const st = await fsp.stat(dev).catch(() => undefined);
    if (type === 'file' || !st?.isBlockDevice()) {
      warn(`[${dev}] is a swap file, not a partition: a random-key encrypted swap needs a block device (crypttab's UUID= names only those), skipping.`);
      continue;
    }
    const table = await o.run('dmsetup', ['table', dev]);
    if (table.code === 0 && / crypt /.test(table.stdout)) {
      warn(`[${dev}] already appears to be encrypted, skipping.`);
      continue;
    }
    const uuid = await blkid(dev, 'UUID');
    if (hasCrypttabEntry(crypttab, dev, uuid) || cryptroot.includes(dev)) {
      warn(`[${dev}] already has an entry in /etc/crypttab, skipping.`);
      continue;
    }
    if (resumeNames(resume, dev, uuid)) {
      warn(`[${dev}] is your hibernation (resume) device: once its key is random at each boot, hibernate/resume from it cannot work. Set RESUME=none in /etc/initramfs-tools/conf.d/resume and run update-initramfs -u.`);
    }
    usable.push({ dev, uuid });
  }
  if (usable.length === 0) {
    warn('There were no usable swap devices to be encrypted.  Exiting.');
    return 0;
  }
  if (!o.force && !o.dryRun) {
    o.out('\nWARNING:\nAn encrypted swap is required to help ensure that encrypted files are not leaked to disk in an unencrypted format.\n\n');
    o.out('HOWEVER, THE SWAP ENCRYPTION CONFIGURATION PRODUCED BY THIS PROGRAM WILL BREAK HIBERNATE/RESUME ON THIS SYSTEM!\n\nNOTE: Your suspend/resume capabilities will not be affected.\n\n');
    const a = (await o.confirm('Do you want to proceed with encrypting your swap? [y/N]: ')).trim();
    o.out('\n');
    if (a !== 'y' && a !== 'Y') {
      o.out('\n');
      info('Aborting.');
      o.out('\n');
      return 0;
    }
  }

  const fstabBefore = await fsp.readFile(r('etc/fstab'), 'utf8').catch(() => '');
  let fstab = fstabBefore;
  let newCrypttab = crypttab;
  let n = 0;
  const gptMarks: Array<{ drive: string; partno: number; attrs: string }> = [];
  for (const { dev, uuid } of usable) {
    info(`Setting up swap: [${dev}]`);
    // /etc/fstab may name the swap by a udev symlink (/dev/mapper/vg-swap_1, /dev/disk/by-uuid/...) or LABEL=.
    const links = (await o.run('udevadm', ['info', '--query=symlink', '-n', dev])).stdout.split(/\s+/).filter(Boolean).map((l) => `/dev/${l}`);
    const label = await blkid(dev, 'LABEL');
    const c = commentOut(fstab, [uuid ? `UUID=${uuid}` : '', label ? `LABEL=${label}` : '', dev, ...links]);
    fstab = c.text;
    for (const t of c.commented) warn(`Commented out your unencrypted swap from /etc/fstab (${t})`);

    if ((await blkid(dev, 'PART_ENTRY_SCHEME', true)) === 'gpt') {
      const p = splitPartition(dev);
      if (p) {
        const got = await o.run('sfdisk', ['--part-attrs', p.drive, String(p.partno)]);
        const attrs = got.stdout.trim();
        if (got.code !== 0) warn(`could not read the GPT attributes of ${dev} (sfdisk, from the fdisk package); mark it "no auto" (attribute 63) yourself, or systemd may activate it unencrypted at boot`);
        else if (/\b63\b/.test(attrs)) o.out(`${dev} is already marked as no-auto\n`);
        else gptMarks.push({ ...p, attrs: attrs ? `${attrs},63` : '63' });
      }
    }

    // A free name: not in crypttab and not an existing mapping (the script checks only the latter).
    n = nextCryptswap(newCrypttab, n, () => false);
    while (await exists(r(`dev/mapper/cryptswap${n}`))) n = nextCryptswap(newCrypttab, n, () => false);
    const name = `cryptswap${n}`;
    const line = crypttabLine(name, uuid, dev);
    newCrypttab = appendLine(newCrypttab, line);
    if (!fstab.split('\n').some((l) => l.split(/\s+/)[0] === `/dev/mapper/${name}`)) fstab = appendLine(fstab, fstabLine(name));
    if (o.dryRun) o.out(`would add to /etc/crypttab: ${line}\nwould add to /etc/fstab: ${fstabLine(name)}\n`);
  }
  if (o.dryRun) {
    for (const g of gptMarks) o.out(`would mark GPT swap partition ${g.partno} of ${g.drive} as no-auto (attribute 63)\n`);
    if (fstab !== fstabBefore) o.out(`/etc/fstab would become:\n${fstab}`);
    info('Dry run (-n): nothing was changed.');
    return 0;
  }

  for (const g of gptMarks) {
    o.out(`marking GPT swap partition ${g.partno} of ${g.drive} as no-auto...\n`);
    if ((await o.run('sfdisk', ['--part-attrs', g.drive, String(g.partno), g.attrs])).code !== 0) warn(`could not mark partition ${g.partno} of ${g.drive} as no-auto; systemd may activate it unencrypted at boot`);
  }
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '');
  await fsp.mkdir(r('etc'), { recursive: true });
  const backups: string[] = [];
  for (const [file, text] of [['etc/fstab', fstab], ['etc/crypttab', newCrypttab]] as const) {
    const st = await fsp.stat(r(file)).catch(() => undefined);
    if (st) {
      await fsp.copyFile(r(file), r(`${file}.ecryptfs-setup-swap.${stamp}`));
      backups.push(`/${file}.ecryptfs-setup-swap.${stamp}`);
    }
    // Never a half /etc/fstab after a crash.
    await writeFileAtomic(r(file), text, { mode: st ? st.mode & 0o7777 : 0o644 });
  }
  if (backups.length) info(`Backups kept: ${backups.join(' ')}`);
  if (!o.noReload) {
    // Debian's cryptsetup has the init script; on systemd without it, the crypttab generator does the same job.
    const steps: Array<[string, string[]]> = [['swapoff', ['-a']]];
    if (await exists(r('etc/init.d/cryptdisks'))) steps.push(['/etc/init.d/cryptdisks', ['restart']]);
    else steps.push(['systemctl', ['daemon-reload']], ['systemctl', ['start', 'cryptsetup.target']]);
    steps.push(['swapon', ['-a']]);
    for (const [cmd, args] of steps) {
      const res = await o.run(cmd, args);
      if (res.code !== 0) warn(`${cmd} ${args.join(' ')} failed (exit ${res.code}); the encrypted swap will be used after a reboot`);
    }
  }
  info('Successfully encrypted swap!');
  return 0;
}

export const USAGE = '\nUsage:\n  ecryptfs-setup-swap [-f|--force] [-n|--dry-run] [--no-reload] [--root DIR]\n\n';

export function setupSwapMain(): void {
  runMain('ecryptfs-setup-swap', async () => {
    const args = process.argv.slice(2);
    const o: SwapOptions = {
      root: process.env.ECRYPTFS_ROOT || '/',
      force: false,
      dryRun: false,
      noReload: false,
      run: realRunner,
      confirm: (p) => ask(p),
      out: (s) => process.stdout.write(s),
      err: (s) => process.stderr.write(s),
    };
    for (let i = 0; i < args.length; i++) {
      const a = args[i];
      if (a === '-f' || a === '--force') o.force = true;
      else if (a === '-n' || a === '--dry-run') o.dryRun = true;
      else if (a === '--no-reload') o.noReload = true;
      else if (a === '--root' && i + 1 < args.length) o.root = args[++i];
      else {
        process.stderr.write(USAGE);
        return 1;
      }
    }
    if (o.root === '/' && !o.dryRun && process.getuid?.() !== 0) throw new EcryptfsError('EINVAL', "This program must be run with 'sudo', or as root");
    return setupSwap(o);
  });
}
