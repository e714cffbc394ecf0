/** Worker side of the crypto pool: CBC-encrypts or -decrypts a run of extents in shared memory, in place. */
import { readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { createBlockCipher } from './blockcipher.js';
import { extentIvsInto } from './extentiv.js';
import type { BlockCipher } from './types.js';
import type { ExtentJob } from './pool.js';

/** The last key's cipher: a file's jobs keep coming with the same key. */
let cached: { key: Buffer; name: string; cipher: BlockCipher } | undefined;
let ivs = new Uint8Array(0);

function cipherFor(job: ExtentJob): BlockCipher {
  const key = Buffer.from(job.key.buffer, job.key.byteOffset, job.key.length);
  if (!cached || cached.name !== job.cipher || !cached.key.equals(key)) {
    cached?.cipher.destroy?.();
    cached?.key.fill(0);
    cached = { key: Buffer.from(key), name: job.cipher, cipher: createBlockCipher(job.cipher, key) };
  }
  key.fill(0);
  return cached.cipher;
}

parentPort!.on('message', ({ id, job, forget }: { id: number; job: ExtentJob; forget?: boolean }) => {
  if (forget) {
    cached?.cipher.destroy?.();
    cached?.key.fill(0);
    cached = undefined;
    return;
  }
  try {
    const c = cipherFor(job);
    if (ivs.length < 16 * job.count) ivs = new Uint8Array(16 * job.count);
    const iv = ivs.subarray(0, 16 * job.count);
    extentIvsInto(job.root, job.first, job.count, iv);
    const data = new Uint8Array(job.buf, job.byteOffset, job.count * job.extentSize);
    if (job.op === 'encrypt') {
      c.cbcEncryptExtents(data, data, job.extentSize, iv);
      parentPort!.postMessage({ id });
      return;
    }
    let read: number | undefined;
    if (job.io) {
      read = 0;
      for (let n; read < data.length && (n = readSync(job.io.fd, data, read, data.length - read, job.io.position + read)) > 0; ) read += n;
      // A short read (the lower file ends early) is the caller's to report: nothing to decrypt.
      if (read < data.length) {
        parentPort!.postMessage({ id, read });
        return;
      }
    }
    c.cbcDecryptExtents(data, data, job.extentSize, iv);
    parentPort!.postMessage({ id, read });
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    parentPort!.postMessage({ id, error: e instanceof Error ? e.message : String(e), code: typeof code === 'string' ? code : undefined });
  }
});
