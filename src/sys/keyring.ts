/**
 * The Linux kernel keyring, where eCryptfs auth tokens live (a system facility, below the mount
 * layer: the mount reads keys by sig and unlinks them at unmount, as the kernel module does) (user keys named by their 16-hex
 * sig, 740-byte payload). Node has no keyctl calls, so this makes the add_key(2) and keyctl(2)
 * system calls through koffi (src/sys/libc.ts), as keyutils' `keyctl` does, without starting it:
 * a process start per call was ~5-40 ms of a mount. Payloads stay in this process's memory,
 * never in argv or the environment.
 */
import { EcryptfsError } from '../errors.js';
import { addKeyCall, keyctlCall, keyctlRead, keyctlSearch, lastErrno, strerror } from './libc.js';

const KEY_SPEC_SESSION_KEYRING = -3;
const KEY_SPEC_USER_KEYRING = -4;
const KEYCTL_GET_KEYRING_ID = 0;
const KEYCTL_DESCRIBE = 6;
const KEYCTL_LINK = 8;
const KEYCTL_UNLINK = 9;
const KEYCTL_READ = 11;

/** Why the keyring cannot be used, with the fix: what a new user reads when a keyring call fails. */
function refusedBy(why: string): string {
  return (
    `the kernel keyring is not available to this process (keyctl: ${why || 'failed'}). ` +
    'Containers usually block it (Docker\'s default seccomp profile refuses add_key and keyctl): run the container with a profile that allows them, ' +
    'or give the passphrase to the command instead of the keyring (e.g. `ecryptfs mount LOWER UPPER -o key=passphrase:passphrase_passwd_file=FILE`)'
  );
}

/** "call: text of errno" of the last failed call, or the error thrown where there is no such call (no koffi, another arch). */
function failure(call: string, e?: unknown): string {
  return e === undefined ? `${call}: ${strerror(lastErrno())}` : `${call}: ${(e as Error).message}`;
}

/** The user keyring's id, or why it cannot be reached (`keyctl show @u` fails the same way). */
function userKeyring(): { id?: number; why?: string } {
  try {
    const id = keyctlCall(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 1);
    return id >= 0 ? { id } : { why: failure('keyctl_get_keyring_ID') };
  } catch (e) {
    return { why: failure('keyctl_get_keyring_ID', e) };
  }
}

/** Why keyringAvailable() is false (cause and fix), or undefined when the keyring works. */
export async function keyringUnavailableReason(): Promise<string | undefined> {
  const r = userKeyring();
  return r.why === undefined ? undefined : refusedBy(r.why);
}

/** True when the user keyring can be reached. */
export function keyringAvailable(): Promise<boolean> {
  return Promise.resolve(userKeyring().why === undefined);
}

function findKeySync(sig: string): number | undefined {
  try {
    const id = keyctlSearch(KEY_SPEC_USER_KEYRING, 'user', sig);
    return id >= 0 ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Key id of the user key named `sig` in the user keyring, or undefined. */
export async function findKey(sig: string): Promise<number | undefined> {
  return findKeySync(sig);
}

/**
 * Add a user key to @u unless one with that description is there (as ecryptfs-utils does).
 * Returns whether it was added.
 */
export async function addKey(sig: string, payload: Uint8Array): Promise<boolean> {
  if (findKeySync(sig) !== undefined) return false;
  let why: string | undefined;
  try {
    if (addKeyCall('user', sig, payload, KEY_SPEC_USER_KEYRING) < 0) why = failure('add_key');
  } catch (e) {
    why = failure('add_key', e);
  }
  if (why !== undefined) throw new EcryptfsError('EIO', `could not add key ${sig} to the user keyring: ${refusedBy(why)}`);
  return true;
}

/** KEYCTL_READ of key `id` into a buffer of its size; undefined with `why` set on failure. */
function readPayload(id: number): { data?: Buffer; why?: string } {
  try {
    let buf = Buffer.alloc(1024);
    for (;;) {
      const n = keyctlRead(KEYCTL_READ, id, buf, buf.length);
      if (n < 0) return { why: failure('keyctl_read') };
      if (n <= buf.length) return { data: buf.subarray(0, n) };
      buf.fill(0);
      buf = Buffer.alloc(n);
    }
  } catch (e) {
    return { why: failure('keyctl_read', e) };
  }
}

/** The payload of the user key named `sig`, or undefined when it is not in the keyring. */
export async function readKey(sig: string): Promise<Buffer | undefined> {
  const id = findKeySync(sig);
  if (id === undefined) return undefined;
  const r = readPayload(id);
  if (!r.data) throw new EcryptfsError('EIO', `could not read key ${sig} from the keyring: ${r.why}`);
  return r.data;
}

/** Unlink the key named `sig` from @u; true when one was there. */
export async function unlinkKey(sig: string): Promise<boolean> {
  const id = findKeySync(sig);
  if (id === undefined) return false;
  try {
    return keyctlCall(KEYCTL_UNLINK, id, KEY_SPEC_USER_KEYRING) >= 0;
  } catch {
    return false;
  }
}

/** Link the user keyring into the session keyring (LP #1377924; pam_keyinit does the same). */
export async function linkUserIntoSession(): Promise<boolean> {
  try {
    return keyctlCall(KEYCTL_LINK, KEY_SPEC_USER_KEYRING, KEY_SPEC_SESSION_KEYRING) >= 0;
  } catch {
    return false;
  }
}

/** Sigs of all user keys in @u (descriptions that are 16 hex digits). */
export async function listSigs(): Promise<string[]> {
  const list = readPayload(KEY_SPEC_USER_KEYRING).data;
  if (!list) return [];
  const sigs: string[] = [];
  const desc = Buffer.alloc(4096);
  for (let i = 0; i + 4 <= list.length; i += 4) {
    let n: number;
    try {
      n = keyctlRead(KEYCTL_DESCRIBE, list.readInt32LE(i), desc, desc.length);
    } catch {
      continue;
    }
    if (n <= 0 || n > desc.length) continue;
    // "type;uid;gid;perm;description" (NUL-terminated)
    const text = desc.toString('latin1', 0, n - 1);
    let at = -1;
    for (let f = 0; f < 4 && (at = text.indexOf(';', at + 1)) >= 0; f++);
    const m = at > 0 && text.startsWith('user;') ? /^([0-9a-f]{16})\b/.exec(text.slice(at + 1)) : null;
    if (m) sigs.push(m[1]);
  }
  return sigs;
}

/** readKey for callers that must answer synchronously. */
export function readKeySync(sig: string): Buffer | undefined {
  const id = findKeySync(sig);
  return id === undefined ? undefined : readPayload(id).data;
}
