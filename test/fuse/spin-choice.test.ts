import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SpinChoice } from '../../src/fuse/spin-choice.js';

/** Feed requests whose gap depends on the way in use; returns the time reached. */
function serve(c: SpinChoice, n: number, gap: (spin: boolean) => number, t = 0): number {
  for (let i = 0; i < n; i++) {
    t += gap(c.spin);
    c.request(t);
  }
  return t;
}

test('SpinChoice: alternates the two ways while probing, then keeps the faster', () => {
  const c = new SpinChoice(4, 2, 100, 2);
  const seen: boolean[] = [];
  let t = 0;
  c.request(t); // the first request has no gap
  for (let i = 0; i < 16; i++) {
    seen.push(c.spin);
    t += c.spin ? 0.02 : 0.05;
    c.request(t);
  }
  // windows of 4: poll, block, poll, block
  assert.deepEqual(seen, [true, true, true, true, false, false, false, false, true, true, true, true, false, false, false, false]);
  assert.equal(c.spin, true);
  serve(c, 50, () => 0.01, t);
  assert.equal(c.spin, true, 'kept between probes');
  assert.equal(c.probes, 1);
  assert.equal(c.chosePoll, 1);
});

test('SpinChoice: blocks at once when polling serves requests slower, and probes again later starting with the other way', () => {
  const c = new SpinChoice(8, 2, 200, 2);
  let t = serve(c, 1 + 32, (spin) => (spin ? 0.06 : 0.03));
  assert.equal(c.spin, false);
  assert.equal(c.probes, 1);
  assert.equal(c.chosePoll, 0);
  t = serve(c, 199, () => 0.03, t);
  assert.equal(c.spin, false);
  c.request((t += 0.03)); // the 200th request: a new probe, polling first
  assert.equal(c.spin, true);
  // now polling is the faster way
  serve(c, 32, (spin) => (spin ? 0.02 : 0.04), t);
  assert.equal(c.spin, true);
  assert.equal(c.probes, 2);
  assert.equal(c.chosePoll, 1);
});

test('SpinChoice: a gap longer than maxGapMs, or the first after pause(), is not counted', () => {
  // Counted, one 1 s pause in a polling window would make polling look slower.
  const gaps = new SpinChoice(8, 1, 1000, 0.5);
  let t = 0;
  gaps.request(t);
  for (let i = 0; i < 16; i++) {
    t += gaps.spin ? (i === 3 ? 1000 : 0.02) : 0.2;
    gaps.request(t);
  }
  // the pause took no place in its window: one more polling request was needed to fill it
  assert.equal(gaps.probes, 0);
  t += 0.2;
  gaps.request(t);
  assert.equal(gaps.probes, 1);
  assert.equal(gaps.spin, true);

  const paused = new SpinChoice(8, 1, 1000, 2);
  t = 0;
  paused.request(t);
  for (let i = 0; i < 16; i++) {
    if (paused.spin && i === 3) {
      paused.pause();
      t += 1;
      paused.request(t); // not counted: no gap after a pause
    }
    t += paused.spin ? 0.02 : 0.2;
    paused.request(t);
  }
  assert.equal(paused.spin, true);
  assert.equal(paused.probes, 1);
});
