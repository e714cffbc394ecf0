/** The PAM service the login tests install: pam_unix plus our hook, as README shows it. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The hook as PAM runs it, pointed at this checkout's node and bin/. */
export const pamHook = () => `/usr/bin/env ECRYPTFS_TS_NODE=${process.execPath} ECRYPTFS_TS_BIN=${join(ROOT, 'bin')} ${join(ROOT, 'src/pam/pam-ecryptfs-ts.sh')}`;

/** /etc/pam.d text; with `passwordModule` (a built pam_ecryptfs_ts_passwd.so) password changes re-wrap. */
export function pamService(passwordModule?: string): string {
  const hook = pamHook();
  return [
    'auth     required pam_unix.so',
    `auth     optional pam_exec.so expose_authtok quiet ${hook}`,
    'account  required pam_unix.so',
    ...(passwordModule ? ['password required pam_unix.so yescrypt', `password optional ${passwordModule} ${hook}`] : []),
    'session  required pam_unix.so',
    `session  optional pam_exec.so quiet ${hook}`,
  ].join('\n') + '\n';
}
