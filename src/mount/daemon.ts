/**
 * The mount daemon: forked by `ecryptfs mount`, gets the lower/upper paths, options and keys
 * over IPC, serves the eCryptfs filesystem through FUSE, and ends on unmount, SIGINT or SIGTERM.
 */
import { writeFile } from 'node:fs/promises';
import { MOUNT_INFO, mountDevAt } from '../sys/mounts.js';
import type { DaemonRequest } from './request.js';
import { KeyRing } from '../volume/keyring.js';
import { cannotOpenLower, Volume } from '../volume/volume.js';
import { NodeLowerFs } from '../lower/lowerfs.js';
import { openDirPath, realPathTrusted } from '../lower/at.js';
import { EcryptfsFs, ROOT } from './fs.js';
import { checkDevRuid, kernelOptionString } from './options.js';
import { safeGeneric, serve, type Served } from './serve.js';
import { kernelKeyFor, kernelKeyForSync } from './keys.js';
import { unlinkKey } from '../sys/keyring.js';
import { preloadLibc } from '../sys/libc.js';
import { removeMountState, stateDir, writeMountState } from './state.js';
import { processStartTime } from '../lower/creds.js';

function log(msg: string): void {
  // Never secrets: messages name files and errors only.
  process.stderr.write(`ecryptfs[${process.pid}]: ${msg}\n`);
}

/**
 * FUSE mounts start with 128 KiB readahead, so sequential reads arrive as 128 KiB requests and
 * per-request cost dominates; root can raise the mount's bdi readahead (measured: 447 -> 817 MB/s).
 */
async function raiseReadahead(upper: string): Promise<void> {
  if (process.getuid?.() !== 0) return;
  try {
    // The device of the mount just made, from the kernel's table: a stat of the path would follow
    // whatever a user owning a parent put there since, and tune that filesystem instead.
    const dev = mountDevAt(upper);
    if (dev === undefined) throw new Error(`${upper} is not in ${MOUNT_INFO}`);
    await writeFile(`/sys/class/bdi/${dev}/read_ahead_kb`, '4096');
  } catch (e) {
    log(`could not raise readahead: ${(e as Error).message}`);
  }
}

function trustedOr(path: string): string {
  try {
    return realPathTrusted(path);
  } catch {
    return path; // the mount itself then says why
  }
}

/** The lower root, walked from / without following any link (the launcher resolved the path). */
function openLowerRoot(path: string): number {
  try {
    return openDirPath(path);
  } catch (e) {
    throw cannotOpenLower(e, path);
  }
}

async function run(req: DaemonRequest): Promise<void> {
  const ring = new KeyRing();
  for (const k of req.keys) ring.add({ sig: k.sig, key: Buffer.from(k.key, 'hex'), origin: k.origin });
  req.keys.length = 0;
  const o = req.options;
  // Refused before mounting when the records' directory is not the user's own (it says how to fix it).
  await stateDir();
  // Without ecryptfs_mount_auth_tok_only the kernel opens a file of any key in the user keyring.
  if (!o.mountAuthTokOnly) {
    ring.outside = kernelKeyFor;
    ring.outsideSync = kernelKeyForSync;
  }
  // Large lower reads/writes go through the thread pool so concurrent FUSE requests overlap.
  // The lower root held from here on: Volume.open's checks and the mount see the same directory.
  const rootFd = openLowerRoot(req.lower);
  // Where the kernel's table will list the mount (root mounts on the path with root's links
  // resolved: fuse/mount.ts), found before mounting: after it, this thread serves the mount.
  const mountedAt = process.getuid?.() === 0 ? trustedOr(req.upper) : req.upper;
  const lower = new NodeLowerFs(req.lower, { syncIoMax: Number(process.env.ECRYPTFS_SYNC_IO_MAX ?? 64 * 1024), rootFd });
  const vol = await Volume.open(lower, ring, {
    cipher: o.cipher, keyBytes: o.keyBytes, sigs: o.sigs, fnekSig: o.fnekSig ?? null,
    fnCipher: o.fnCipher, fnKeyBytes: o.fnKeyBytes, passthrough: o.passthrough, xattrMetadata: o.xattrMetadata,
    readOnly: o.readOnly || o.encryptedView,
  });
  const fs = new EcryptfsFs(vol, { readOnly: o.readOnly, encryptedView: o.encryptedView, log, syncIoMax: Number(process.env.ECRYPTFS_SYNC_IO_MAX ?? 64 * 1024) });
  // Decided on the lower root's descriptor the mount serves, never its path again. The real uid
  // is the launcher's: the daemon is its child (root) or fusermount3's exec as the same user.
  const rootAttr = fs.getattrSync(ROOT);
  if (o.checkDevRuid) checkDevRuid(rootAttr.uid, process.getuid?.() ?? 0, req.lower);
  const mountSigs = [...o.sigs, ...(o.fnekSig ? [o.fnekSig] : [])];
  // The record is written before mounting, and removed if the mount fails: once the mount is up,
  // this thread blocks in read(2) on /dev/fuse (the FUSE server), and each asynchronous step
  // after it waits for the server's waker to let the event loop run: the record's seven file
  // operations and the readahead's took ~25 ms of a ~165 ms mount on a quiet machine.
  await writeMountState({ lower: req.lower, upper: req.upper, pid: process.pid, start: processStartTime(process.pid), options: kernelOptionString(o), sigs: mountSigs, unlinkSigs: o.unlinkSigs });
  let served: Served;
  try {
    served = await serve(fs, {
      source: req.source,
      mountpoint: req.upper,
      readOnly: o.readOnly || o.encryptedView,
      generic: safeGeneric(o.generic, rootAttr),
      log,
    });
  } catch (e) {
    await removeMountState(req.upper).catch(() => undefined);
    throw e;
  }
  const stop = () => {
    // Long truncates and writes end at their next chunk (the file stays consistent).
    fs.stopping = true;
    served.unmount().catch((e: Error) => log(`unmount failed: ${e.message}`));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', () => undefined);
  process.send?.({ mounted: true });
  // After the report: it only speeds later reads.
  await raiseReadahead(mountedAt);
  if (!process.connected) process.stdin?.destroy?.();
  process.on('disconnect', () => undefined);
  await served.unmounted;
  await fs.closeAll();
  vol.close();
  // However the mount went (ecryptfs umount, umount, fusermount3 -u, umount -l), its keys leave
  // the user keyring with ecryptfs_unlink_sigs, as the kernel does when the superblock goes.
  if (o.unlinkSigs) for (const s of mountSigs) await unlinkKey(s).catch(() => false);
  await removeMountState(req.upper);
}

// The daemon is forked before its request is ready (see daemon-fork.ts): koffi, which the lower
// directory's and the mount's system calls need, loads while it waits (~20 ms of a mount).
setImmediate(preloadLibc);

process.once('message', (req: DaemonRequest) => {
  run(req).then(
    () => process.exit(0),
    (e: Error) => {
      log(e.message);
      if (process.connected) process.send?.({ error: e.message });
      process.exit(1);
    },
  );
});
