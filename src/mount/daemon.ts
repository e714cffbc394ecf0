/**
 * The mount daemon: forked by `ecryptfs mount`, gets the lower/upper paths, options and keys
 * over IPC, serves the eCryptfs filesystem through FUSE, and ends on unmount, SIGINT or SIGTERM.
 */
import type { DaemonRequest } from '../cli/mount.js';
import { KeyRing } from '../volume/keyring.js';
import { Volume } from '../volume/volume.js';
import { EcryptfsFs } from './fs.js';
import { kernelOptionString } from './options.js';
import { serve } from './serve.js';
import { removeMountState, writeMountState } from './state.js';

function log(msg: string): void {
  // Never secrets: messages name files and errors only.
  process.stderr.write(`ecryptfs[${process.pid}]: ${msg}\n`);
}

async function run(req: DaemonRequest): Promise<void> {
  const ring = new KeyRing();
  for (const k of req.keys) ring.add({ sig: k.sig, key: Buffer.from(k.key, 'hex'), origin: k.origin });
  req.keys.length = 0;
  const o = req.options;
  const vol = await Volume.open(req.lower, ring, {
    cipher: o.cipher, keyBytes: o.keyBytes, sigs: o.sigs, fnekSig: o.fnekSig ?? null,
    fnCipher: o.fnCipher, fnKeyBytes: o.fnKeyBytes, passthrough: o.passthrough, xattrMetadata: o.xattrMetadata,
    readOnly: o.readOnly || o.encryptedView,
  });
  const fs = new EcryptfsFs(vol, { readOnly: o.readOnly, encryptedView: o.encryptedView, log });
  const served = await serve(fs, {
    source: req.lower,
    mountpoint: req.upper,
    readOnly: o.readOnly || o.encryptedView,
    generic: o.generic,
    log,
  });
  await writeMountState({ lower: req.lower, upper: req.upper, pid: process.pid, options: kernelOptionString(o), sigs: [...o.sigs, ...(o.fnekSig ? [o.fnekSig] : [])], unlinkSigs: o.unlinkSigs });
  const stop = () => {
    served.unmount().catch((e: Error) => log(`unmount failed: ${e.message}`));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', () => undefined);
  process.send?.({ mounted: true });
  if (!process.connected) process.stdin?.destroy?.();
  process.on('disconnect', () => undefined);
  await served.unmounted;
  await fs.closeAll();
  vol.close();
  await removeMountState(req.upper);
}

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
