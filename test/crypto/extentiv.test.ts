/**
 * Extent IVs in batches (src/crypto/extentiv.ts) against node:crypto's MD5 of the kernel's message:
 * the four-lane WebAssembly MD5 (md5x4.ts), the decimal index carried from extent to extent
 * (across 9 -> 10, 99 -> 100, ...), runs longer than the module's memory holds at once.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { extentIvsInto } from '../../src/crypto/extentiv.js';
import { md5x4 } from '../../src/crypto/md5x4.js';

function reference(root: Uint8Array, n: number): Buffer {
  const m = Buffer.alloc(32);
  m.set(root);
  m.write(String(n), 16, 'latin1');
  return createHash('md5').update(m).digest();
}

function check(root: Uint8Array, first: number, count: number): void {
  const out = Buffer.alloc(16 * count + 5, 0xee);
  extentIvsInto(root, first, count, out, 5);
  for (let i = 0; i < count; i++) assert.deepEqual(out.subarray(5 + 16 * i, 21 + 16 * i), reference(root, first + i), `extent ${first + i}`);
  assert.deepEqual(out.subarray(0, 5), Buffer.alloc(5, 0xee), 'nothing before the output');
}

test('WebAssembly SIMD MD5 is there (Node 20 has it)', { skip: process.env.ECRYPTFS_MD5_SIMD === '0' ? 'turned off' : false }, () => {
  assert.ok(md5x4());
});

test('batched IVs equal MD5(root || decimal index) across every digit-count change', () => {
  const root = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
  for (let p = 10; p <= 1e15; p *= 10) check(root, p - 7, 15);
  check(root, Number.MAX_SAFE_INTEGER - 20, 21);
  check(root, 0, 4);
  check(root, 0, 3);
});

test('batched IVs: random roots, first extents and counts (groups of 8 and the rest)', () => {
  fc.assert(fc.property(
    fc.uint8Array({ minLength: 16, maxLength: 16 }),
    fc.oneof(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER - 100 })),
    fc.integer({ min: 1, max: 100 }),
    (root, first, count) => check(root, first, count),
  ), { numRuns: 300 });
});

test('a run longer than the four-lane MD5 takes at once (its memory holds ~4,000 messages)', () => {
  check(Buffer.alloc(16, 7), 995, 10_000);
});

test('a single extent\'s IV goes through the four-lane MD5 too (no cold JavaScript MD5 on a 4 KiB request)', { skip: process.env.ECRYPTFS_MD5_SIMD === '0' ? 'turned off' : false }, () => {
  const x4 = md5x4()!;
  const run = x4.run;
  let runs = 0;
  x4.run = (n: number) => {
    runs++;
    run(n);
  };
  try {
    for (const count of [1, 2, 3]) check(Buffer.alloc(16, 9), 41, count);
  } finally {
    x4.run = run;
  }
  assert.equal(runs, 3);
});

test('without WebAssembly SIMD (ECRYPTFS_MD5_SIMD=0) the JavaScript MD5 gives the same IVs', () => {
  const script = `
    const { createHash } = require('node:crypto');
    import(${JSON.stringify(new URL('../../src/crypto/extentiv.js', import.meta.url).href)}).then(({ extentIvsInto }) => {
      const root = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
      for (const [first, count] of [[0, 1], [9, 3], [99, 17], [123456789, 40]]) {
        const out = Buffer.alloc(16 * count);
        extentIvsInto(root, first, count, out);
        for (let i = 0; i < count; i++) {
          const m = Buffer.alloc(32); root.copy(m); m.write(String(first + i), 16, 'latin1');
          if (!out.subarray(16 * i, 16 * i + 16).equals(createHash('md5').update(m).digest())) throw new Error('extent ' + (first + i));
        }
      }
    });`;
  const r = spawnSync(process.execPath, ['-e', script], { env: { ...process.env, ECRYPTFS_MD5_SIMD: '0' }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
});
