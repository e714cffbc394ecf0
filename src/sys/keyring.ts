/**
 * The Linux kernel keyring, where eCryptfs auth tokens live (a system facility, below the mount
 * layer: the mount reads keys by sig and unlinks them at unmount, as the kernel module does) (user keys named by their 16-hex
 * sig, 740-byte payload). Node has no keyctl syscalls, so this drives keyutils' `keyctl`;
 * payloads go through stdin/stdout only, never argv, so secrets do not show in `ps`.
 */
import { EcryptfsError } from '../errors.js';
import { run as runCommand, runSync } from './run.js';

async function run(args: string[], input?: Uint8Array): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  const r = await runCommand('keyctl', args, { input });
  if (r.error) throw r.error.code === 'ENOENT' ? new EcryptfsError('EINVAL', NO_KEYCTL) : r.error;
  return r;
}

const NO_KEYCTL = 'the kernel keyring cannot be used: keyctl is not installed (or not in PATH). Fix: as root run `apt-get install keyutils`';

/** Why the keyring cannot be used, with the fix: what a new user reads when keyctl fails. */
function refusedBy(stderr: string): string {
  return (
    `the kernel keyring is not available to this process (keyctl: ${stderr || 'failed'}). ` +
    'Containers usually block it (Docker\'s default seccomp profile refuses add_key and keyctl): run the container with a profile that allows them, ' +
    'or give the passphrase to the command instead of the keyring (e.g. `ecryptfs mount LOWER UPPER -o key=passphrase:passphrase_passwd_file=FILE`)'
  );
}

/** Why keyringAvailable() is false (cause and fix), or undefined when the keyring works. */
export async function keyringUnavailableReason(): Promise<string | undefined> {
  const r = await runCommand('keyctl', ['show', '@u']);
  if (r.code === 0) return undefined;
  return r.error?.code === 'ENOENT' ? NO_KEYCTL : refusedBy(r.error ? '' : r.stderr);
}

let available: Promise<boolean> | undefined;

/** True when `keyctl` runs and the user keyring can be read. */
export function keyringAvailable(): Promise<boolean> {
  available ??= runCommand('keyctl', ['show', '@u']).then((r) => r.code === 0);
  return available;
}

/** Key id of the user key named `sig` in the user keyring, or undefined. */
export async function findKey(sig: string): Promise<number | undefined> {
  const r = await run(['search', '@u', 'user', sig]);
  if (r.code !== 0) return undefined;
  return Number(r.stdout.toString().trim());
}

/**
 * Add a user key to @u unless one with that description is there (as ecryptfs-utils does).
 * Returns whether it was added.
 */
export async function addKey(sig: string, payload: Uint8Array): Promise<boolean> {
  if ((await findKey(sig)) !== undefined) return false;
  const r = await run(['padd', 'user', sig, '@u'], payload);
  if (r.code !== 0) throw new EcryptfsError('EIO', `could not add key ${sig} to the user keyring: ${refusedBy(r.stderr)}`);
  return true;
}

/** The payload of the user key named `sig`, or undefined when it is not in the keyring. */
export async function readKey(sig: string): Promise<Buffer | undefined> {
  const id = await findKey(sig);
  if (id === undefined) return undefined;
  const r = await run(['pipe', String(id)]);
  if (r.code !== 0) throw new EcryptfsError('EIO', `could not read key ${sig} from the keyring: ${r.stderr}`);
  return r.stdout;
}

/** Unlink the key named `sig` from @u; true when one was there. */
export async function unlinkKey(sig: string): Promise<boolean> {
  const id = await findKey(sig);
  if (id === undefined) return false;
  const r = await run(['unlink', String(id), '@u']);
  return r.code === 0;
}

/** Link the user keyring into the session keyring (LP #1377924; pam_keyinit does the same). */
export async function linkUserIntoSession(): Promise<boolean> {
  const r = await run(['link', '@u', '@s']);
  return r.code === 0;
}

/** Sigs of all user keys in @u (descriptions that are 16 hex digits). */
export async function listSigs(): Promise<string[]> {
  const ids = await run(['list', '@u']);
  if (ids.code !== 0) return [];
  const sigs: string[] = [];
  for (const m of ids.stdout.toString().matchAll(/user: ([0-9a-f]{16})\b/g)) sigs.push(m[1]);
  return sigs;
}

/** readKey without waiting on the event loop, for callers that must answer synchronously. */
export function readKeySync(sig: string): Buffer | undefined {
  const found = runSync('keyctl', ['search', '@u', 'user', sig]);
  if (found.code !== 0) return undefined;
  const r = runSync('keyctl', ['pipe', found.stdout.toString().trim()]);
  return r.code === 0 ? r.stdout : undefined;
}
