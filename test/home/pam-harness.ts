/** The PAM service the login tests install: pam_unix plus pam_ecryptfs_ts.so, built from this checkout. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sh } from '../mount/harness.js';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Why the PAM tests cannot run here, or false. */
export function pamSkipReason(): string | false {
  if (process.getuid?.() !== 0) return 'PAM login tests need root (CI runs as root)';
  if (sh('command -v pamtester && command -v fusermount3 && command -v setpriv && command -v keyctl').code !== 0) return 'needs pamtester, fuse3, util-linux setpriv and keyutils (apt-get install pamtester fuse3 keyutils)';
  if (sh('command -v cc && test -e /usr/include/security/pam_modules.h').code !== 0) return 'needs a C compiler and the PAM headers to build pam_ecryptfs_ts.so (apt-get install gcc libpam0g-dev)';
  return false;
}

let built = '';
/**
 * Build pam_ecryptfs_ts.so as `npm run build:pam` does (with -Werror), once per test file; removed
 * when the process exits (an after() hook would run at the end of the first test that built it).
 */
export function buildModule(): string {
  if (built) return built;
  const dir = mkdtempSync(join(tmpdir(), 'pam-mod-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'pam_ecryptfs_ts.so');
  const r = sh(`cc -shared -fPIC -O2 -Wall -Wextra -Werror -o ${out} ${join(ROOT, 'src/pam/pam_ecryptfs_ts.c')} -lpam`);
  assert.equal(r.code, 0, r.out);
  return (built = out);
}

/** The module's options: this checkout's hook, node and bin/. */
export const moduleArgs = (extra = '') => `hook=${join(ROOT, 'src/pam/pam-ecryptfs-ts.sh')} node=${process.execPath} bin=${join(ROOT, 'bin')}${extra ? ` ${extra}` : ''}`;

/** /etc/pam.d text: pam_unix, then our module for auth, password and session (as pam-auth-update places it). */
export function pamService(module = buildModule(), opts: { sessionBefore?: string[]; extra?: string } = {}): string {
  const line = `optional ${module} ${moduleArgs(opts.extra)}`;
  return [
    'auth     required pam_unix.so',
    `auth     ${line}`,
    'account  required pam_unix.so',
    'password required pam_unix.so yescrypt',
    `password ${line}`,
    'session  required pam_unix.so',
    ...(opts.sessionBefore ?? []),
    `session  ${line}`,
  ].join('\n') + '\n';
}

/** The administrator's log of pam_ecryptfs_ts.so. */
export const LOG_FILE = '/var/log/ecryptfs-ts.log';
