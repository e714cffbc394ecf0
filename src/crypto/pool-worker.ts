/** Worker side of the crypto pool: CBC-encrypts a batch of extents in place and sends it back. */
import { parentPort } from 'node:worker_threads';
import { createBlockCipher } from './blockcipher.js';
import type { CipherName } from './types.js';

export interface PoolJob {
  id: number;
  cipher: CipherName;
  key: Uint8Array;
  extentSize: number;
  ivs: Uint8Array;
  data: ArrayBuffer;
}

parentPort!.on('message', (job: PoolJob) => {
  const c = createBlockCipher(job.cipher, job.key);
  const data = new Uint8Array(job.data);
  const count = data.length / job.extentSize;
  const ivs = Array.from({ length: count }, (_, i) => job.ivs.subarray(16 * i, 16 * i + 16));
  c.cbcEncryptExtents(data, data, job.extentSize, ivs);
  job.key.fill(0);
  parentPort!.postMessage({ id: job.id, data: job.data }, [job.data]);
});
