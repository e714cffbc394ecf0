/** A byte progress bar on stderr for long trees, only when stderr is a terminal (cli-progress). */
import cliProgress from 'cli-progress';
import type { TreeProgress } from '../volume/tree.js';

export function treeProgress(label: string): { progress?: TreeProgress; stop(): void } {
  if (!process.stderr.isTTY) return { stop() {} };
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: `${label} [{bar}] {percentage}% | {value}/{total} files | ETA {eta_formatted}`, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    progress: {
      onTotal(files) {
        bar.start(files, 0);
        started = true;
      },
      onFile() {
        bar.increment();
      },
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
