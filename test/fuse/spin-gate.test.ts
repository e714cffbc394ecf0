import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SpinGate } from '../../src/fuse/spin-gate.js';

const MS = 1_000_000n;

test('SpinGate: polls while pressure is low, stops at offAt, starts again only below onBelow', () => {
  let p: number | undefined = 5;
  let reads = 0;
  const g = new SpinGate(() => (reads++, p), 40, 20, 200n * MS);
  assert.equal(g.allowed(0n), true);
  p = 45;
  assert.equal(g.allowed(100n * MS), true, 'not read again before the interval');
  assert.equal(reads, 1);
  assert.equal(g.allowed(200n * MS), false, 'at or above offAt: no poll');
  p = 30;
  assert.equal(g.allowed(400n * MS), false, 'between the two thresholds: stays off');
  p = 19.9;
  assert.equal(g.allowed(600n * MS), true, 'below onBelow: polls again');
  p = 39.9;
  assert.equal(g.allowed(800n * MS), true, 'between the two thresholds: stays on');
  assert.equal(reads, 5);
});

test('SpinGate: unknown pressure (no PSI) leaves the gate as it is', () => {
  let p: number | undefined;
  const g = new SpinGate(() => p, 40, 20, 1n);
  assert.equal(g.allowed(1n), true);
  p = 90;
  assert.equal(g.allowed(2n), false);
  p = undefined;
  assert.equal(g.allowed(3n), false);
});
