/**
 * The crypto pool spreads a large batch only while that has cost less than the calling thread
 * alone, and every 32nd batch tries the other way again.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { cryptoPool, setCryptoWorkers } from '../../src/crypto/pool.js';

after(() => setCryptoWorkers(undefined));

test('the cheaper way wins, the dearer one is tried every 32nd batch, each kind of batch on its own costs', () => {
  setCryptoWorkers(1);
  const pool = cryptoPool();
  // Nothing measured yet: spread, then (spread measured) the calling thread alone.
  assert.equal(pool.pays('read'), true);
  pool.took('read', true, 3, 100);
  assert.equal(pool.pays('read'), false);
  pool.took('read', false, 2, 100);
  // Alone costs less: of the next 32 batches one goes to the pool, to measure it again.
  const ways = () => Array.from({ length: 32 }, () => pool.pays('read'));
  assert.equal(ways().filter(Boolean).length, 1);
  // The load went away: spread batches got cheap, and the running cost follows within a few batches.
  for (let i = 0; i < 6; i++) pool.took('read', true, 1, 100);
  assert.equal(ways().filter(Boolean).length, 31);
  // One stalled batch moves the running cost at most a quarter up: the pool stays the cheaper way.
  pool.took('read', true, 100, 100);
  assert.equal(ways().filter(Boolean).length, 31);
  // Encryption keeps its own costs (none yet: try the pool first).
  assert.equal(pool.pays('encrypt'), true);
  setCryptoWorkers(1);
  pool.took('read', false, 1, 100);
  assert.equal(pool.pays('read'), true, 'setCryptoWorkers forgets the costs: spread first');
  setCryptoWorkers(0);
  assert.equal(pool.pays('read'), false, 'no workers: nothing to spread');
});
