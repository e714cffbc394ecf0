/**
 * A small record per mount (no secrets) so `ecryptfs umount` and `ecryptfs mounts` know the
 * eCryptfs options, which /proc/mounts cannot show for a FUSE filesystem.
 */
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';

export interface MountState {
  lower: string;
  upper: string;
  pid: number;
  options: string;
  sigs: string[];
  unlinkSigs: boolean;
}

export function stateDir(): string {
  const uid = process.getuid?.() ?? 0;
  return uid === 0 ? '/run/ecryptfs-ts' : join(process.env.XDG_RUNTIME_DIR ?? `/tmp/ecryptfs-ts-${uid}`, 'ecryptfs-ts');
}

const fileFor = (upper: string) => join(stateDir(), `${Buffer.from(upper).toString('base64url')}.json`);

export async function writeMountState(s: MountState): Promise<void> {
  await fsp.mkdir(stateDir(), { recursive: true, mode: 0o700 });
  await fsp.writeFile(fileFor(s.upper), JSON.stringify(s), { mode: 0o600 });
}

export async function readMountState(upper: string): Promise<MountState | undefined> {
  const t = await fsp.readFile(fileFor(upper), 'utf8').catch(() => undefined);
  return t ? (JSON.parse(t) as MountState) : undefined;
}

export async function removeMountState(upper: string): Promise<void> {
  await fsp.rm(fileFor(upper), { force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function listMountStates(): Promise<MountState[]> {
  const names = await fsp.readdir(stateDir()).catch(() => [] as string[]);
  const out: MountState[] = [];
  for (const n of names) {
    const t = await fsp.readFile(join(stateDir(), n), 'utf8').catch(() => undefined);
    if (!t) continue;
    const s = JSON.parse(t) as MountState;
    // A daemon that was killed could not remove its record: drop it here.
    if (!alive(s.pid)) await fsp.rm(join(stateDir(), n), { force: true });
    else out.push(s);
  }
  return out;
}
