import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CpuPressure } from '../../src/sys/pressure.js';

test('CpuPressure reads "some avg10" and reads it again from the same descriptor', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ets-psi-'));
  try {
    const f = join(dir, 'cpu');
    writeFileSync(f, 'some avg10=12.50 avg60=3.00 avg300=1.00 total=99\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n');
    const p = new CpuPressure(f);
    assert.equal(p.some10(), 12.5);
    writeFileSync(f, 'some avg10=87.25 avg60=3.00 avg300=1.00 total=100\n');
    assert.equal(p.some10(), 87.25, 'each call reads from offset 0, not where the last one ended');
    writeFileSync(f, 'nonsense\n');
    assert.equal(p.some10(), undefined);
    p.close();
    assert.equal(p.some10(), undefined);
    assert.equal(new CpuPressure(join(dir, 'missing')).some10(), undefined, 'a kernel without PSI');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CpuPressure on this kernel: a percentage where /proc/pressure/cpu exists, nothing where not', () => {
  const p = new CpuPressure();
  const v = p.some10();
  p.close();
  if (existsSync('/proc/pressure/cpu')) {
    assert.equal(typeof v, 'number');
    assert.ok(v! >= 0 && v! <= 100, String(v));
  } else {
    assert.equal(v, undefined);
  }
});
