/**
 * The daemon's entry: `node FLAGS daemon-boot.js SCRIPT` loads SCRIPT (the daemon, bundled or
 * not: daemon-fork.ts chooses). V8 takes the heap flags (heap-flags.ts) at its start, and then
 * they matter no more for the semi-space and only at each GC for the growth; but while they
 * differ from V8's defaults, V8's flag hash differs from the one Node's built-in modules were
 * compiled under, and Node throws their code cache away and compiles each one the daemon loads
 * (~10 ms of CPU at every mount, measured: README Performance, mount start). So they are set back
 * to the defaults while the daemon's modules load, and again after.
 */
import { setFlagsFromString } from 'node:v8';
import { pathToFileURL } from 'node:url';
import { HEAP_FLAGS } from './heap-flags.js';

for (const f of HEAP_FLAGS) setFlagsFromString(`${f.name}=${f.v8Default}`);
try {
  await import(pathToFileURL(process.argv[2]).href);
} finally {
  for (const f of HEAP_FLAGS) setFlagsFromString(`${f.name}=${f.value}`);
}
