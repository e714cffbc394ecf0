import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants as C, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { readableNow } from '../../src/sys/libc.js';

// The FUSE server polls /dev/fuse with this before a blocking read: a wrong answer either blocks
// (false "readable") or spins its whole budget every time (false "not readable").
test('readableNow: a FIFO is readable only once it holds data, and at once after', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ets-sys-'));
  try {
    const fifo = join(dir, 'p');
    execFileSync('mkfifo', [fifo]);
    const fd = openSync(fifo, C.O_RDWR | C.O_NONBLOCK);
    try {
      assert.equal(readableNow(fd), false);
      writeSync(fd, Buffer.from('x'));
      assert.equal(readableNow(fd), true);
    } finally {
      closeSync(fd);
    }
    // A closed descriptor is "readable": the read that follows reports the error instead of blocking.
    assert.equal(readableNow(fd), true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
