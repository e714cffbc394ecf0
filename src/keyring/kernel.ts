/**
 * The Linux kernel keyring, where eCryptfs auth tokens live (user keys named by their 16-hex
 * sig, 740-byte payload). Node has no keyctl syscalls, so this drives keyutils' `keyctl`;
 * payloads go through stdin/stdout only, never argv, so secrets do not show in `ps`.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { EcryptfsError } from '../errors.js';

function run(args: string[], input?: Uint8Array): Promise<{ code: number; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('keyctl', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'ENOENT' ? new EcryptfsError('EINVAL', NO_KEYCTL) : e));
    p.on('close', (code) => resolve({ code: code ?? 1, stdout: Buffer.concat(out), stderr: err.trim() }));
    p.stdin.on('error', () => undefined); // keyctl may exit without reading stdin
    p.stdin.end(input ?? Buffer.alloc(0));
  });
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
export function keyringUnavailableReason(): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile('keyctl', ['show', '@u'], (err, _out, stderr) => {
      if (!err) resolve(undefined);
      else resolve((err as NodeJS.ErrnoException).code === 'ENOENT' ? NO_KEYCTL : refusedBy(String(stderr).trim()));
    });
  });
}

let available: Promise<boolean> | undefined;

/** True when `keyctl` runs and the user keyring can be read. */
export function keyringAvailable(): Promise<boolean> {
  available ??= new Promise((resolve) => {
    execFile('keyctl', ['show', '@u'], (err) => resolve(!err));
  });
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
  const found = spawnSync('keyctl', ['search', '@u', 'user', sig], { encoding: 'utf8' });
  if (found.status !== 0) return undefined;
  const r = spawnSync('keyctl', ['pipe', found.stdout.trim()]);
  return r.status === 0 ? r.stdout : undefined;
}
