/** The crypto pool spreads batches only while doing so pays (a free core), and tries again later. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cryptoPool, setCryptoWorkers } from '../../src/crypto/pool.js';

after(() => setCryptoWorkers(undefined));

test('after a spread that lost, 2, 4, ... 64 batches stay on the calling thread; a win or a new thread count resets that', () => {
  setCryptoWorkers(1);
  const pool = cryptoPool();
  assert.equal(pool.pays(), true);
  const kept = () => {
    let n = 0;
    while (!pool.pays()) n++;
    return n;
  };
  // Lost: the caller waited longer for the worker's share than doing it itself would have taken.
  for (const want of [2, 4, 8, 16, 32, 64, 64]) {
    pool.outcome(1, 1.5, 2);
    assert.equal(kept(), want);
  }
  pool.outcome(1, 0.2, 2);
  pool.outcome(1, 1.5, 2);
  assert.equal(kept(), 2, 'a win starts the backoff over');
  // With two workers the caller's share is a third: waiting up to twice its time still pays.
  pool.outcome(1, 1.9, 3);
  assert.equal(pool.pays(), true);
  pool.outcome(1, 1.5, 2);
  setCryptoWorkers(1);
  assert.equal(pool.pays(), true, 'setCryptoWorkers starts afresh');
  setCryptoWorkers(0);
  assert.equal(pool.pays(), false, 'no workers: nothing to spread');
});
