/**
 * The daemon's entry: `node FLAGS daemon-boot SCRIPT` loads SCRIPT (the daemon, bundled or not:
 * daemon-fork.ts chooses). V8 takes the heap flags (heap-flags.ts) at its start, and then they
 * matter no more for the semi-space and only at each GC for the growth; but while they differ
 * from V8's defaults, V8's flag hash differs from the one Node's built-in modules were compiled
 * under, and Node throws their code cache away and compiles each one the daemon loads (~10 ms of
 * CPU at every mount, measured: README Performance, mount start). So they are set back to the
 * defaults while the daemon's modules load, and again after.
 *
 * scripts/bundle.mjs also builds this file as CommonJS (bundle/daemon-boot.cjs), which loads the
 * CommonJS daemon bundle (bundle/daemon.cjs) with `require`: a process whose modules are all
 * CommonJS never starts the ES module loader, whose set-up and asynchronous reads cost the
 * daemon's start ~15 ms of wall time (PERFORMANCE.md, mount start, fourth pass). No top-level
 * await here for that reason.
 */
import { setFlagsFromString } from 'node:v8';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { HEAP_FLAGS } from './heap-flags.js';

const heapFlags = (which: 'value' | 'v8Default'): void => {
  for (const f of HEAP_FLAGS) setFlagsFromString(`${f.name}=${f[which]}`);
};

heapFlags('v8Default');
const script = process.argv[2];
if (script.endsWith('.cjs')) {
  try {
    createRequire(import.meta.url)(script);
  } finally {
    heapFlags('value');
  }
} else {
  // A rejection stays unhandled: the daemon ends with it, as it did with a top-level await.
  void import(pathToFileURL(script).href).finally(() => heapFlags('value'));
}
