/**
 * --help for every installed command: runMain asks here before it runs a tool's body, so a
 * request for help prints the usage, exits 0 and never acts (no mount, no key, no counter file).
 * `-h` means help too, except where the tool has an -h of its own (ecryptfs-verify: --home).
 * Usage texts a tool already prints on a bad argument are taken from its module (loaded only
 * when help is asked), so the two never differ.
 */

interface HelpEntry {
  usage: () => Promise<string>;
  /** The tool has no -h of its own, so -h is help too. */
  shortH: boolean;
}

const text = (s: string) => () => Promise.resolve(s);

export const MOUNT_USAGE = `Usage: mount -t ecryptfs LOWER UPPER [-o OPTIONS]
       mount.ecryptfs LOWER UPPER [-o OPTIONS] [--foreground]

eCryptfs mount helper: asks for what OPTIONS leave open (passphrase, cipher, key bytes,
passthrough, filename encryption), then mounts LOWER on UPPER through FUSE.
Defaults for the questions are read from ~/.ecryptfsrc (one option a line, as in -o).
The passphrase comes from key=passphrase:passphrase_passwd_file=FILE,
key=passphrase:passphrase_passwd_fd=N, the keyring (ecryptfs_sig=), or the prompt.
`;

export const UMOUNT_USAGE = `Usage: umount.ecryptfs UPPER

Unmount an eCryptfs mount; with ecryptfs_unlink_sigs its keys leave the user keyring.
`;

export const MOUNT_PRIVATE_HELPER_USAGE = `Usage: mount.ecryptfs_private [ALIAS]
Mount the default private directory or ALIAS, if specified.

  -h        display this help and exit

Without ALIAS: ~/.Private on ~/Private (or the path in ~/.ecryptfs/Private.mnt) with the keys
named in ~/.ecryptfs/Private.sig. With ALIAS: the fstab(5)-style line "LOWER UPPER ecryptfs" of
~/.ecryptfs/ALIAS.conf with the keys named in ~/.ecryptfs/ALIAS.sig. The keys must be in the
user keyring already (ecryptfs-mount-private asks for the passphrase and adds them).
`;

export const UMOUNT_PRIVATE_HELPER_USAGE = `Usage: umount.ecryptfs_private [-f] [-d] [ALIAS]
Unmount the default private directory or ALIAS, if specified.

  -h        display this help and exit
  -f        forcibly unmount
  -d        don't treat a non-zero session counter as an error
`;

const USAGES: Record<string, HelpEntry> = {
  'ecryptfs-add-passphrase': { shortH: true, usage: async () => (await import('./keytools.js')).ADD_USAGE },
  'ecryptfs-wrap-passphrase': { shortH: true, usage: async () => (await import('./keytools.js')).WRAP_USAGE },
  'ecryptfs-unwrap-passphrase': { shortH: true, usage: async () => (await import('./keytools.js')).UNWRAP_USAGE },
  'ecryptfs-rewrap-passphrase': { shortH: true, usage: async () => (await import('./keytools.js')).REWRAP_USAGE },
  'ecryptfs-stat': { shortH: true, usage: async () => (await import('./keytools.js')).STAT_USAGE },
  'ecryptfs-insert-wrapped-passphrase-into-keyring': {
    shortH: true,
    usage: text(`Usage:

ecryptfs-insert-wrapped-passphrase-into-keyring [file]
or
printf "%s" "wrapping passphrase" | ecryptfs-insert-wrapped-passphrase-into-keyring [file] -

Unwrap the mount passphrase in file (default ~/.ecryptfs/wrapped-passphrase) and add its keys
(file key and FNEK) to the user keyring.
`),
  },
  'mount.ecryptfs': { shortH: true, usage: text(MOUNT_USAGE) },
  'umount.ecryptfs': { shortH: true, usage: text(UMOUNT_USAGE) },
  'mount.ecryptfs_private': { shortH: true, usage: text(MOUNT_PRIVATE_HELPER_USAGE) },
  'umount.ecryptfs_private': { shortH: true, usage: text(UMOUNT_PRIVATE_HELPER_USAGE) },
  'ecryptfs-rewrite-file': {
    shortH: true,
    usage: text(`Usage:

ecryptfs-rewrite-file FILE [FILE...]

Re-encrypt each FILE (a path inside a mounted eCryptfs directory) in place, under the mount's
current key; a file written in passthrough mode becomes encrypted.
`),
  },
  'ecryptfs-verify': { shortH: false, usage: async () => (await import('./verify.js')).USAGE },
  'ecryptfs-manager': {
    shortH: true,
    usage: text(`Usage:

ecryptfs-manager

The eCryptfs key management menu: add a passphrase key to the user keyring, list or remove
the keys there. Answers are read from the terminal, or from stdin one a line.
`),
  },
  'ecryptfs-setup-swap': { shortH: true, usage: async () => (await import('./setup-swap.js')).USAGE },
  'ecryptfs-setup-private': { shortH: true, usage: async () => (await import('./private.js')).USAGE },
  'ecryptfs-mount-private': {
    shortH: true,
    usage: text(`Usage:

ecryptfs-mount-private

Mount your encrypted private directory (~/Private), asking for your login (or wrapping)
passphrase when its keys are not in the user keyring yet.
`),
  },
  'ecryptfs-umount-private': {
    shortH: true,
    usage: text(`Usage:

ecryptfs-umount-private [-f]

Leave one session of your encrypted private directory; the last one unmounts it and removes
its keys from the user keyring. -f unmounts whatever the session count.
`),
  },
  'ecryptfs-recover-private': {
    shortH: true,
    usage: text(`Usage:

ecryptfs-recover-private [--rw] [encrypted private dir]

Find encrypted private directories (or take the one given), ask for the login or mount
passphrase, and mount it on a new /tmp/ecryptfs.XXXXXXXX (read-only unless --rw).
Must be run as root.
`),
  },
  'ecryptfs-migrate-home': { shortH: true, usage: async () => (await import('./migrate-home.js')).USAGE },
  'ecryptfs-find': {
    shortH: true,
    usage: text(`Usage:

ecryptfs-find FILE

Print the other layer's name of FILE: the clear path of a lower (encrypted) file, or the
lower path of a clear file, in the mounted eCryptfs filesystems.
`),
  },
};

/** The usage text when `args` ask `tool` for help, else undefined (the tool then runs). */
export function helpRequested(tool: string, args: string[]): Promise<string> | undefined {
  const e = USAGES[tool];
  if (!e) return undefined;
  const end = args.indexOf('--');
  const opts = end < 0 ? args : args.slice(0, end);
  if (opts.includes('--help') || (e.shortH && opts.includes('-h'))) return e.usage();
  return undefined;
}

/** The commands with help here (every bin except `ecryptfs`, whose help commander prints). */
export const HELP_TOOLS = Object.keys(USAGES);
