/**
 * Pure text edits of /etc/fstab and /etc/crypttab for ecryptfs-setup-swap (no I/O, so that the
 * edits are tested without touching a machine's /etc).
 */

/** What a random-key swap line in /etc/crypttab looks like (ecryptfs-utils 111). offset=1024
 * keeps the first 512 KiB clear, so the swap signature and its UUID survive the mkswap that
 * cryptdisks does at each boot, and UUID= keeps naming the partition (LP #1447282). */
export function crypttabLine(name: string, uuid: string | undefined, dev: string): string {
  return `${name} ${uuid ? `UUID=${uuid}` : dev} /dev/urandom swap,offset=1024,cipher=aes-xts-plain64`;
}

export function fstabLine(name: string): string {
  return `/dev/mapper/${name} none swap sw 0 0`;
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** Comment out the fstab lines whose first field is one of `targets` (as the script's sed does). */
export function commentOut(fstab: string, targets: string[]): { text: string; commented: string[] } {
  const commented: string[] = [];
  let text = fstab;
  for (const t of targets) {
    if (!t) continue;
    const re = new RegExp(`^${escapeRe(t)}[ \\t]+`, 'gm');
    if (re.test(text)) {
      text = text.replace(re, `#${t} `);
      commented.push(t);
    }
  }
  return { text, commented };
}

/** Active (uncommented) lines of a crypttab-like file. */
const active = (text: string) => text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));

/** Whether crypttab already sets up this swap: the script's `^BASE.*swap.*cipher`, or a line whose
 * source is the device or its UUID. */
export function hasCrypttabEntry(crypttab: string, dev: string, uuid: string | undefined): boolean {
  const base = dev.split('/').pop() ?? dev;
  return active(crypttab).some((l) => {
    const src = l.split(/\s+/)[1] ?? '';
    return new RegExp(`^${escapeRe(base)}.*swap.*cipher`).test(l) || src === dev || (!!uuid && (src === `UUID=${uuid}` || src === `/dev/disk/by-uuid/${uuid}`));
  });
}

/** The first cryptswapN (N > after) not named in crypttab and for which `taken` says no. */
export function nextCryptswap(crypttab: string, after: number, taken: (name: string) => boolean): number {
  const names = new Set(active(crypttab).map((l) => l.split(/\s+/)[0]));
  let n = after + 1;
  while (names.has(`cryptswap${n}`) || taken(`cryptswap${n}`)) n++;
  return n;
}

/** Append a line, adding the newline a hand-edited file may lack at its end. */
export function appendLine(text: string, line: string): string {
  return `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}${line}\n`;
}

/** Whole disk and partition number of a partition device, as the script splits them
 * (/dev/sda2 -> /dev/sda 2; /dev/nvme0n1p3 -> /dev/nvme0n1 3, LP #1597154). */
export function splitPartition(dev: string): { drive: string; partno: number } | undefined {
  const m = /^(\/dev\/.+[0-9])p([0-9]+)$/.exec(dev) ?? /^(\/dev\/.*[^0-9])([0-9]+)$/.exec(dev);
  return m ? { drive: m[1], partno: Number(m[2]) } : undefined;
}

/** Whether a resume (hibernation) setting names this swap: RESUME=... in initramfs-tools'
 * conf.d/resume, or resume=... on the kernel command line. */
export function resumeNames(text: string, dev: string, uuid: string | undefined): boolean {
  for (const m of text.matchAll(/\bresume=("?)([^\s"]+)\1/gi)) {
    const v = m[2];
    if (v === dev || (uuid && (v === `UUID=${uuid}` || v === `/dev/disk/by-uuid/${uuid}`))) return true;
  }
  return false;
}
