/**
 * Forking the mount daemon (daemon.ts). Kept apart from launch.ts and light (node: modules only)
 * so that a mount command can fork the daemon as its very first step, before it loads its own
 * modules: Node's start and module loading in the daemon (the longest part of a mount) then
 * overlap the command's (measured: `ecryptfs mount` as root, see README Performance).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { HEAP_FLAGS } from './heap-flags.js';

/**
 * `bundle` when it is there and not older than `plain` (the one-file bundle scripts/bundle.mjs
 * builds after tsc; older means tsc ran again since, and the bundle would be stale code), else
 * `plain`; always `plain` with ECRYPTFS_BUNDLE=0.
 */
export function freshBundle(plain: string, bundle: string): string {
  if (process.env.ECRYPTFS_BUNDLE === '0') return plain;
  const b = statSync(bundle, { throwIfNoEntry: false });
  return b && b.mtimeMs >= statSync(plain).mtimeMs ? bundle : plain;
}

/** The daemon's script: its bundle loads with ~25 ms less CPU than its ~60 modules (README Performance). */
export const DAEMON_SCRIPT = (): string =>
  freshBundle(fileURLToPath(new URL('./daemon.js', import.meta.url)), fileURLToPath(new URL('../bundle/daemon.cjs', import.meta.url)));

/**
 * What node runs for the daemon, after its flags: the boot (daemon-boot.ts) and the daemon's
 * script; the bundled daemon with the boot's CommonJS bundle beside it, so that nothing in the
 * daemon starts the ES module loader.
 */
export const daemonCommand = (): string[] => {
  const script = DAEMON_SCRIPT();
  const boot = script.endsWith('.cjs') ? new URL('../bundle/daemon-boot.cjs', import.meta.url) : new URL('./daemon-boot.js', import.meta.url);
  return [fileURLToPath(boot), script];
};

/** Each pending /dev/fuse read holds a libuv pool thread; the pool is sized at start. */
export const daemonEnv = (): NodeJS.ProcessEnv => ({ ...process.env, UV_THREADPOOL_SIZE: process.env.UV_THREADPOOL_SIZE ?? '24' });

/** Node flags of the daemon: its heap flags (heap-flags.ts) and the legacy provider (Blowfish, CAST5). */
export const DAEMON_NODE_FLAGS = ['--openssl-legacy-provider', ...HEAP_FLAGS.map((f) => `${f.name}=${f.value}`)];

/** The root daemon (mount(2) needs no helper); undefined for other users. It waits for its request. */
export function forkRootDaemon(foreground: boolean): ChildProcess | undefined {
  if ((process.getuid?.() ?? 0) !== 0) return undefined;
  const out = foreground ? 'inherit' : 'ignore';
  // ECRYPTFS_DAEMON_NODE_ARGS (e.g. --cpu-prof) is for profiling the daemon.
  const extra = (process.env.ECRYPTFS_DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const [boot, script] = daemonCommand();
  const child = fork(boot, [script], { detached: !foreground, stdio: ['ignore', out, out, 'ipc'], env: daemonEnv(), execArgv: [...DAEMON_NODE_FLAGS, ...extra] });
  child.on('error', () => undefined);
  return child;
}

/**
 * The preforked daemon, on the global object: the launcher (bin/ecryptfs.js, CommonJS) forks through the
 * CommonJS copy of this module (bundle/daemon-fork.cjs) and the command takes the daemon through
 * this ES module, two module instances in one process.
 */
const PREFORKED = Symbol.for('ecryptfs-ts.preforked-daemon');
type Preforked = { child: ChildProcess; foreground: boolean } | undefined;
const slot = globalThis as unknown as Record<symbol, Preforked>;

/**
 * Fork the root daemon now, for a mount this process is about to do (a command's first step).
 * It holds neither this process's event loop nor anything else: a command that ends without
 * mounting (a usage error, --help, a refused option) kills it at exit, and a daemon whose
 * parent is gone ends on its own (its IPC channel closes).
 */
export function preforkRootDaemon(foreground: boolean): void {
  if (slot[PREFORKED]) return;
  const child = forkRootDaemon(foreground);
  if (!child) return;
  child.unref();
  child.channel?.unref();
  slot[PREFORKED] = { child, foreground };
  process.once('exit', () => slot[PREFORKED]?.child.kill());
}

/** The preforked daemon if it was forked for the same foreground mode (else it is killed); at most once. */
export function takePreforkedDaemon(foreground: boolean): ChildProcess | undefined {
  const p = slot[PREFORKED];
  slot[PREFORKED] = undefined;
  if (!p) return undefined;
  if (p.foreground === foreground && p.child.exitCode === null && p.child.signalCode === null) {
    p.child.ref();
    p.child.channel?.ref();
    return p.child;
  }
  p.child.kill();
  return undefined;
}

/**
 * Whether the arguments of a mount (after the command or subcommand name) ask for a mount the
 * daemon can be forked for at once: not --help, not -f/--foreground (a foreground daemon shares
 * our terminal; forked later, as before). A wrong guess costs only time: takePreforkedDaemon
 * kills a daemon forked for the other mode.
 */
export function preforkFits(args: string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-o' || a === '--options') i++;
    else if (a.startsWith('-o') || a.startsWith('--options=')) continue;
    else if (a === '--help' || a === '--foreground' || a === '--version' || a === '--') return false;
    else if (/^-[a-zA-Z]*[fhV]/.test(a)) return false;
  }
  return true;
}

/** For `ecryptfs ARGS`: fork the daemon now when ARGS are a root mount's (`mount LOWER UPPER ...`). */
export function preforkForCommand(args: string[]): void {
  if (args[0] === 'mount' && preforkFits(args.slice(1))) preforkRootDaemon(false);
}
