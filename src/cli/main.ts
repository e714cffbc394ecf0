#!/usr/bin/env node
/** The `ecryptfs` command: offline decrypt/encrypt, ls, stat, fsck (and mount, umount). */
import { Command, Option } from 'commander';
import { CIPHER_NAMES, type CipherName } from '../crypto/types.js';
import type { Volume, EntryType } from '../volume/volume.js';
import type { TreeResult } from '../volume/tree.js';
import { addKeyOptions, keysFromOptions, type KeyOptions } from './keyinput.js';
import { errorMessage, runMain } from './run.js';
import { packageVersion } from './version.js';
import { preforkForCommand } from '../mount/daemon-fork.js';

// Each subcommand loads what it needs when it runs (dynamic imports): a command that loads every
// subcommand's modules spends most of a mount's start-up compiling code it never runs.
function reportProblems(cmd: string, r: TreeResult): number {
  for (const p of r.problems) process.stderr.write(`ecryptfs ${cmd}: ${errorMessage(p.error)}\n`);
  for (const n of r.notes) process.stderr.write(`ecryptfs ${cmd}: note: ${n}\n`);
  return r.problems.length > 0 ? 1 : 0;
}

async function openVolumeAt(dir: string, o: KeyOptions & { passthrough?: boolean }): Promise<Volume> {
  const [{ Volume }, { lowerDirArg }] = await Promise.all([import('../volume/volume.js'), import('./argv.js')]);
  const keys = await keysFromOptions(o);
  return Volume.open(lowerDirArg(dir), keys.ring, { sigs: [keys.fileSig], fnekSig: keys.fnekSig, passthrough: o.passthrough, readOnly: true });
}

let lastCode = 0;

const SLASH = Buffer.from('/');
/** `ls -l`'s first column. */
const TYPE_CHAR: Record<EntryType, string> = { file: '-', dir: 'd', symlink: 'l', fifo: 'p', socket: 's', 'char-device': 'c', 'block-device': 'b', other: '?' };

/** Commander ignores action results: keep the exit code an action returns. */
function act<A extends unknown[]>(fn: (...args: A) => Promise<number | void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    lastCode = Math.max(lastCode, (await fn(...args)) ?? 0);
  };
}

export function buildProgram(): Command {
  const program = new Command('ecryptfs')
    .description('eCryptfs in userspace: read and write Linux eCryptfs lower directories without the kernel module')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .showHelpAfterError();

  addKeyOptions(
    program
      .command('decrypt')
      .description('decrypt lower files or whole lower directories into clear files (a directory SRC fills DEST with its clear contents)')
      .argument('<src...>', 'lower files or directories')
      .requiredOption('-o, --output <dest>', 'destination directory')
      .option('--passthrough', 'copy lower files that are not eCryptfs as they are (as the kernel passthrough mode reads them)'),
  ).action(act(async (srcs: string[], o: KeyOptions & { output: string; passthrough?: boolean }) => {
    const [{ promises: fsp }, { Volume }, { decryptTree }, { treeProgress }, { basenameOf, dirnameOf, lowerAt, rawArg }] = await Promise.all([
      import('node:fs'), import('../volume/volume.js'), import('../volume/tree.js'), import('./progress.js'), import('./argv.js'),
    ]);
    const keys = await keysFromOptions(o);
    const bar = treeProgress('decrypt');
    let rc = 0;
    try {
      for (const src of srcs.map(rawArg)) {
        const st = await fsp.lstat(src);
        const isDir = st.isDirectory();
        const root = isDir ? src : dirnameOf(src);
        const vol = await Volume.open(lowerAt(root), keys.ring, { sigs: [keys.fileSig], fnekSig: keys.fnekSig, readOnly: true });
        const r = await decryptTree(vol, [isDir ? '' : basenameOf(src)], rawArg(o.output), { passthrough: o.passthrough, progress: bar.progress });
        rc |= reportProblems('decrypt', r);
      }
    } finally {
      bar.stop();
      keys.ring.destroy();
    }
    return rc;
  }));

  addKeyOptions(
    program
      .command('encrypt')
      .description('encrypt clear files or directories into an eCryptfs lower directory the kernel can mount')
      .argument('<src...>', 'clear files or directories (a directory\'s contents go into LOWERDIR)')
      .requiredOption('-o, --output <lowerdir>', 'lower directory (created if missing)')
      .addOption(new Option('--cipher <name>', 'cipher for the file contents').choices(CIPHER_NAMES as string[]).default('aes'))
      .option('--key-bytes <n>', 'key size in bytes (aes: 16, 24, 32)', (v) => Number(v))
      .option('--filename-crypto', 'encrypt file names (FNEK)')
      .addOption(
        new Option('--fnek-from <how>', 'filename key when --filename-crypto has no --fnek-passphrase-file: "fnek-salt" (ecryptfs-add-passphrase --fnek, ~/Private) or "mount-key" (the file key itself, as interactive mount does)')
          .choices(['fnek-salt', 'mount-key'])
          .default('fnek-salt'),
      )
      .option('--xattr-metadata', 'keep headers in the user.ecryptfs xattr (ecryptfs_xattr_metadata)'),
  ).action(act(async (srcs: string[], o: KeyOptions & { output: string; cipher: CipherName; keyBytes?: number; filenameCrypto?: boolean; fnekFrom: string; xattrMetadata?: boolean }) => {
    const [{ promises: fsp }, { Volume }, { encryptTree }, { CIPHERS }, { treeProgress }, { lowerAt, rawArg, resolveArg }] = await Promise.all([
      import('node:fs'), import('../volume/volume.js'), import('../volume/tree.js'), import('../format/ciphers.js'), import('./progress.js'), import('./argv.js'),
    ]);
    const keys = await keysFromOptions(o);
    const cipher = o.cipher;
    const keyBytes = o.keyBytes ?? CIPHERS[cipher].keySizes[0];
    let fnekSig: string | null = null;
    if (o.filenameCrypto) {
      if (keys.fnekSig) fnekSig = keys.fnekSig;
      else if (o.fnekFrom === 'mount-key') fnekSig = keys.fileSig;
      else fnekSig = keys.ring.sigs.find((s) => keys.ring.get(s)!.origin === 'fnek')!;
    }
    const output = resolveArg(rawArg(o.output));
    await fsp.mkdir(output, { recursive: true, mode: 0o700 });
    const bar = treeProgress('encrypt');
    try {
      const vol = await Volume.open(lowerAt(output), keys.ring, { cipher, keyBytes, sigs: [keys.fileSig], fnekSig, xattrMetadata: o.xattrMetadata });
      const r = await encryptTree(vol, srcs.map(rawArg), '', { progress: bar.progress });
      return reportProblems('encrypt', r);
    } finally {
      bar.stop();
      keys.ring.destroy();
    }
  }));

  addKeyOptions(
    program
      .command('ls')
      .description('list a lower directory with clear names and clear sizes (name bytes that are not UTF-8, control bytes and \\ print as \\xHH / \\\\, as ls -b does)')
      .argument('<lowerdir>', 'lower directory')
      .argument('[path]', 'clear path inside the volume', '')
      .option('-R, --recursive', 'list subdirectories too')
      .option('-l, --long', 'show type, mode, size (major, minor for devices), mtime and the symlink target')
      .option('--json', 'one JSON object per line, names both escaped and as base64 of their exact bytes'),
  ).action(act(async (dir: string, path: string, o: KeyOptions & { recursive?: boolean; long?: boolean; json?: boolean }) => {
    const [{ splitBytes }, { escapeName, unescapeName }, { devMajorMinor }] = await Promise.all([
      import('../volume/volume.js'), import('../volume/names.js'), import('../lower/mknod.js'),
    ]);
    const vol = await openVolumeAt(dir, o);
    let rc = 0;
    try {
      // Names are bytes: listed from the lower directory as Buffers and printed with escapeName.
      const list = async (lowerDir: Buffer, clearDir: Buffer): Promise<void> => {
        const entries = (await vol.readdirLower(lowerDir)).sort((a, b) => Buffer.compare(a.nameBytes, b.nameBytes));
        for (const e of entries) {
          const lowerPath = lowerDir.length === 0 ? e.lowerNameBytes : Buffer.concat([lowerDir, SLASH, e.lowerNameBytes]);
          if (e.error) {
            if (o.json) process.stdout.write(`${JSON.stringify({ lowerPath: escapeName(lowerPath), lowerPathBase64: lowerPath.toString('base64'), error: 'bad-name', message: e.error.message })}\n`);
            process.stderr.write(`ecryptfs ls: ${escapeName(vol.lower.abs(lowerPath))}: bad-name: ${e.error.message}\n`);
            rc = 1;
            continue;
          }
          const full = clearDir.length === 0 ? e.nameBytes : Buffer.concat([clearDir, SLASH, e.nameBytes]);
          if (o.json) {
            const st = await vol.statLower(lowerPath).catch(() => undefined);
            const target = e.type === 'symlink' ? await vol.readlinkLowerBytes(lowerPath).catch(() => undefined) : undefined;
            const dev = st && (e.type === 'char-device' || e.type === 'block-device') ? devMajorMinor(st.lower.rdev) : undefined;
            process.stdout.write(`${JSON.stringify({
              path: escapeName(full), pathBase64: full.toString('base64'), lowerPath: escapeName(lowerPath), type: e.type,
              size: st?.size, mode: st && st.lower.mode & 0o7777, mtime: st?.lower.mtime.toISOString(),
              ...(dev && { device: { major: dev[0], minor: dev[1] } }),
              ...(target && { target: escapeName(target), targetBase64: target.toString('base64') }),
              ...(st?.plain && { plain: true }),
            })}\n`);
          } else if (o.long) {
            const st = await vol.statLower(lowerPath).catch(() => undefined);
            const mode = st ? (st.lower.mode & 0o7777).toString(8).padStart(4, '0') : '????';
            const dev = st && (e.type === 'char-device' || e.type === 'block-device');
            const size = !st ? '?' : dev ? devMajorMinor(st.lower.rdev).join(', ') : String(st.size);
            const mtime = st ? st.lower.mtime.toISOString() : '?';
            const link = e.type === 'symlink' ? ` -> ${await vol.readlinkLowerBytes(lowerPath).then(escapeName, () => '?')}` : '';
            process.stdout.write(`${TYPE_CHAR[e.type]} ${mode} ${size.padStart(12)} ${mtime} ${escapeName(full)}${link}${st?.plain ? '  [not eCryptfs]' : ''}\n`);
          } else process.stdout.write(`${escapeName(full)}${e.type === 'dir' ? '/' : ''}\n`);
          if (o.recursive && e.type === 'dir') await list(lowerPath, full);
        }
      };
      // PATH may carry the escapes ls prints (caf\xe9.txt), so every listed name can be named again.
      const clear = Buffer.concat(splitBytes(unescapeName(path)).flatMap((c, i) => (i === 0 ? [c] : [SLASH, c])));
      let start = vol.lowerPathBytes(clear);
      if (!(await vol.lower.lstat(start).then(() => true, () => false))) start = Buffer.from(await vol.resolve(path));
      await list(start, clear);
    } finally {
      vol.close();
    }
    return rc;
  }));

  program
    .command('stat')
    .description('show the eCryptfs header of a lower file (as ecryptfs-stat does)')
    .argument('<lowerfile>')
    .action(async (file: string) => {
      const [{ statText }, { rawArg }] = await Promise.all([import('./statcmd.js'), import('./argv.js')]);
      process.stdout.write(await statText(rawArg(file)));
    });

  addKeyOptions(
    program
      .command('fsck')
      .description('check a lower directory: every file valid, not eCryptfs, of another key, damaged, or with a name that does not decode')
      .argument('<lowerdir>')
      .option('-q, --quiet', 'print only problems and the summary'),
  ).action(act(async (dir: string, o: KeyOptions & { quiet?: boolean }) => {
    const { fsck, fsckFailed } = await import('../volume/fsck.js');
    const vol = await openVolumeAt(dir, o);
    try {
      const r = await fsck(vol, (e) => {
        if (o.quiet && e.verdict === 'ok') return;
        process.stdout.write(`${e.verdict.padEnd(12)} ${e.lowerPath}${e.clearPath && e.clearPath !== e.lowerPath ? ` (${e.clearPath})` : ''}: ${e.detail}\n`);
      });
      const c = r.counts;
      process.stdout.write(`\n${r.entries.length} entries: ${c.ok} ok, ${c['not-ecryptfs']} not eCryptfs, ${c['other-key']} of another key, ${c.damaged} damaged, ${c['bad-name']} bad names\n`);
      return fsckFailed(r) ? 1 : 0;
    } finally {
      vol.close();
    }
  }));

  program
    .command('mount')
    .description('mount a lower directory at UPPER through FUSE, as mount -t ecryptfs does (asks what -o leaves open)')
    .argument('<lower>')
    .argument('<upper>')
    .option('-o, --options <opts>', 'mount.ecryptfs options (key=passphrase:passphrase_passwd_file=F, ecryptfs_sig=, ecryptfs_cipher=, ...)', '')
    .option('-f, --foreground', 'stay in the foreground until unmounted')
    .action(act(async (lower: string, upper: string, o: { options: string; foreground?: boolean }) => (await import('./mount.js')).mountCommand({ lower, upper, options: o.options, foreground: !!o.foreground, ecryptfsrc: true })));

  program
    .command('umount')
    .description('unmount an ecryptfs-ts mount (unlinks its keys from the keyring with ecryptfs_unlink_sigs)')
    .argument('<upper>')
    .action(act(async (upper: string) => (await import('./mount.js')).umountCommand(upper)));

  program
    .command('mounts')
    .description('list ecryptfs-ts mounts with their eCryptfs options')
    .action(act(async () => {
      const { listMountStates } = await import('../mount/state.js');
      for (const s of await listMountStates()) process.stdout.write(`${s.lower} on ${s.upper} type ecryptfs (${s.options}) [pid ${s.pid}]\n`);
    }));

  return program;
}

/** The command's entry (bin/ecryptfs.js and this file run as a script). */
export function startMain(): void {
  // A root mount forks its daemon first, so the daemon's start overlaps all of ours.
  preforkForCommand(process.argv.slice(2));
  runMain('ecryptfs', () => main());
}

/** Parse argv and run; resolves to the exit code (commander's usage errors included). */
export async function main(argv = process.argv): Promise<number> {
  const program = buildProgram();
  program.exitOverride();
  for (const c of program.commands) c.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    const ce = e as { code?: string; exitCode?: number };
    if (typeof ce.code === 'string' && ce.code.startsWith('commander.')) return ce.exitCode ?? 1;
    throw e;
  }
  return lastCode;
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\/dist\//, '/dist/'))) {
  startMain();
}
