/**
 * The daemon's V8 heap flags, shared by daemon-fork.ts (its command line) and daemon-boot.ts
 * (which sets them back to V8's defaults while Node loads its built-in modules). No imports: the
 * boot loads it before anything else.
 *
 * A daemon lives as long as its mount, and most of its allocations die within a request: a
 * 2 MiB semi-space (scavenged sooner, which also frees the native memory of short-lived objects
 * such as node:crypto ciphers sooner) and a full GC once the old space grew by half. No heap cap:
 * a daemon that runs out of heap loses writes. Measured (20,000 files created, listed cold and
 * deleted, tmpfs; daemon CPU 8.0-9.2 s in every variant): peak RSS 128-147 MiB by default,
 * 98-127 with the small semi-space alone, 91-92 with both; --heap-growing-percent=25 gave no less
 * (96). The scale checks: README Performance.
 */
export const HEAP_FLAGS: readonly { name: string; value: string; v8Default: string }[] = [
  { name: '--max-semi-space-size', value: '2', v8Default: '0' },
  { name: '--heap-growing-percent', value: '50', v8Default: '0' },
];
