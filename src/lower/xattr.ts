/**
 * Extended attributes on the lower filesystem, served by a python3 co-process (xattr-helper.py):
 * Node has no xattr API and a native addon would need a compiler at install time.
 * The process starts on first use and is unref'd so it never keeps the event loop alive.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';

export class XattrError extends Error {
  constructor(readonly errno: number, readonly code: string, message: string) {
    super(message);
  }
}

const ERRNO_CODES: Record<number, string> = { 2: 'ENOENT', 7: 'E2BIG', 13: 'EACCES', 17: 'EEXIST', 20: 'ENOTDIR', 22: 'EINVAL', 28: 'ENOSPC', 30: 'EROFS', 34: 'ERANGE', 61: 'ENODATA', 95: 'EOPNOTSUPP', 1: 'EPERM' };

function helperPath(): string {
  // Compiled file lives in dist/src/lower/; the .py stays in src/lower/.
  for (const rel of ['./xattr-helper.py', '../../../src/lower/xattr-helper.py']) {
    const p = fileURLToPath(new URL(rel, import.meta.url));
    if (existsSync(p)) return p;
  }
  throw new Error('xattr-helper.py not found next to the compiled sources');
}

interface Pending { resolve(v: Record<string, unknown>): void; reject(e: Error): void }

class XattrServer {
  private proc: ChildProcessWithoutNullStreams | undefined;
  private next = 1;
  private readonly pending = new Map<number, Pending>();

  private start(): ChildProcessWithoutNullStreams {
    if (this.proc) return this.proc;
    const proc = spawn('python3', [helperPath()], { stdio: ['pipe', 'pipe', 'pipe'] });
    proc.on('error', (e) => this.failAll(e));
    proc.on('exit', () => {
      this.proc = undefined;
      this.failAll(new Error('xattr helper exited'));
    });
    createInterface({ input: proc.stdout }).on('line', (line) => {
      const msg = JSON.parse(line) as Record<string, unknown>;
      const p = this.pending.get(msg.id as number);
      if (!p) return;
      this.pending.delete(msg.id as number);
      if (this.pending.size === 0) this.idle();
      if (typeof msg.errno === 'number') {
        const code = ERRNO_CODES[msg.errno] ?? `E${msg.errno}`;
        p.reject(new XattrError(msg.errno, code, `${code}: extended attribute operation failed`));
      } else p.resolve(msg);
    });
    this.proc = proc;
    this.idle();
    return proc;
  }

  private idle(): void {
    // Let the process exit when nothing is pending.
    this.proc?.unref();
    (this.proc?.stdout as unknown as { unref?: () => void } | undefined)?.unref?.();
    (this.proc?.stdin as unknown as { unref?: () => void } | undefined)?.unref?.();
    (this.proc?.stderr as unknown as { unref?: () => void } | undefined)?.unref?.();
  }

  private busy(): void {
    this.proc?.ref();
    (this.proc?.stdout as unknown as { ref?: () => void } | undefined)?.ref?.();
  }

  private failAll(e: Error): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  call(req: Record<string, unknown>): Promise<Record<string, unknown>> {
    const proc = this.start();
    const id = this.next++;
    this.busy();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      proc.stdin.write(JSON.stringify({ ...req, id }) + '\n');
    });
  }
}

const server = new XattrServer();
const b64 = (p: string | Buffer) => Buffer.from(p).toString('base64');

export async function getXattr(path: string, name: string, follow = true): Promise<Buffer> {
  const r = await server.call({ op: 'get', path: b64(path), name, follow });
  return Buffer.from(r.value as string, 'base64');
}

/** The attribute, or undefined when it does not exist (ENODATA). */
export async function getXattrIfAny(path: string, name: string, follow = true): Promise<Buffer | undefined> {
  try {
    return await getXattr(path, name, follow);
  } catch (e) {
    if (e instanceof XattrError && (e.code === 'ENODATA' || e.code === 'EOPNOTSUPP')) return undefined;
    throw e;
  }
}

export async function setXattr(path: string, name: string, value: Uint8Array, flags = 0, follow = true): Promise<void> {
  await server.call({ op: 'set', path: b64(path), name, value: Buffer.from(value).toString('base64'), flags, follow });
}

export async function listXattr(path: string, follow = true): Promise<string[]> {
  const r = await server.call({ op: 'list', path: b64(path), follow });
  return r.names as string[];
}

export async function removeXattr(path: string, name: string, follow = true): Promise<void> {
  await server.call({ op: 'remove', path: b64(path), name, follow });
}
