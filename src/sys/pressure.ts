/**
 * CPU pressure stall information (PSI, /proc/pressure/cpu): the share of recent time in which some
 * runnable task waited for a CPU. Read through one descriptor kept open (a pread from 0 renders the
 * file afresh), so a check costs one syscall.
 */
import { closeSync, openSync, readSync } from 'node:fs';

export class CpuPressure {
  private fd: number;
  private readonly buf = Buffer.alloc(256);

  /** `path` only for tests; a kernel without PSI (or psi=0) has no such file: nothing is reported. */
  constructor(path = '/proc/pressure/cpu') {
    try {
      this.fd = openSync(path, 'r');
    } catch {
      this.fd = -1;
    }
  }

  /** "some avg10" in percent (a 10-second average), or undefined where the kernel gives none. */
  some10(): number | undefined {
    if (this.fd < 0) return undefined;
    try {
      const n = readSync(this.fd, this.buf, 0, this.buf.length, 0);
      const m = /^some avg10=(\d+(?:\.\d+)?)/.exec(this.buf.toString('latin1', 0, n));
      return m ? Number(m[1]) : undefined;
    } catch {
      return undefined;
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
