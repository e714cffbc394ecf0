/** The mount request the CLI hands the daemon over IPC (keys as hex, never in argv). */
import type { MountOptions } from './options.js';

export interface DaemonRequest {
  /** The lower directory, symlinks resolved. */
  lower: string;
  /** The lower directory as given: what /proc/mounts shows, as for the kernel's mount. */
  source: string;
  upper: string;
  options: Omit<MountOptions, 'passphrase'>;
  keys: Array<{ sig: string; key: string; origin: 'passphrase' | 'fnek' | 'raw' }>;
  foreground: boolean;
}
