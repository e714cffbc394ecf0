/**
 * FUSE throughput check (not a test): mounts the zero filesystem (or MemFs with --memfs) through
 * the memfs daemon and times dd writing and reading SIZE MiB (default 256) in 1 MiB blocks.
 * Run as root: node dist/test/fuse/throughput.js --run [--memfs] [MiB]
 */
import { rootSkipReason, run, startMemfs, tempMountpoint } from './harness.js';

// node --test runs every .js under test/: only run when asked to.
if (process.argv.includes('--run')) {
  const why = rootSkipReason();
  if (why) {
    console.error(`throughput: ${why}`);
    process.exit(1);
  }
  const memfs = process.argv.includes('--memfs');
  const mib = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 256);
  const mp = tempMountpoint();
  const d = await startMemfs(mp, memfs ? {} : { MEMFS_ZERO: '1' });
  const file = `${mp}/${memfs ? 'data' : 'zero'}`;
  try {
    const dd = async (label: string, args: string[]) => {
      const t = process.hrtime.bigint();
      const r = await run('dd', [...args, 'bs=1M', `count=${mib}`, 'status=none']);
      if (r.code !== 0) throw new Error(`dd: ${r.stderr}`);
      const s = Number(process.hrtime.bigint() - t) / 1e9;
      console.log(`${label}: ${mib} MiB in ${s.toFixed(3)} s = ${((mib * 1.048576) / s).toFixed(0)} MB/s`);
    };
    for (let i = 0; i < 3; i++) {
      await dd(`write #${i + 1}`, ['if=/dev/zero', `of=${file}`, 'conv=notrunc']);
      await dd(`read  #${i + 1}`, [`if=${file}`, 'of=/dev/null']);
    }
  } finally {
    await d.cleanup();
  }
}
