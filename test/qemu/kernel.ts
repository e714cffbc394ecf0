/** The real Linux kernel (Debian's, with ecryptfs.ko) in qemu, for compatibility tests. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const QEMU_DIR = fileURLToPath(new URL('../../../test/qemu/', import.meta.url));

/** Why the kernel harness cannot run here, or false when it can (the guest is built on demand). */
export function kernelSkipReason(): string | false {
  if (process.getuid?.() !== 0) return 'the kernel harness needs root (CI runs as root)';
  if (spawnSync('sh', ['-c', 'command -v qemu-system-x86_64 && command -v busybox && command -v mkfs.ext4']).status !== 0) {
    return 'qemu-system-x86, busybox-static or e2fsprogs is not installed (see test/qemu/apt-packages.txt)';
  }
  const b = spawnSync('bash', [`${QEMU_DIR}build-guest.sh`], { encoding: 'utf8' });
  if (b.status !== 0) return `the kernel guest could not be built: ${b.stderr.trim().split('\n').pop()}`;
  return false;
}

/** Boot the guest with `inDir` as /in, run `script` there; the guest's /out lands in `outDir`. */
export function runInKernel(inDir: string, outDir: string, script: string): { code: number; log: string } {
  const r = spawnSync('bash', [`${QEMU_DIR}run-guest.sh`, inDir, outDir, script], { encoding: 'utf8', timeout: 20 * 60 * 1000 });
  return { code: r.status ?? -1, log: `${r.stdout}${r.stderr}` };
}
