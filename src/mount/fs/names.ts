/** The names a node is known by (hard links keep several), and the name caches' storage. */
import { isDir } from '../../lower/at.js';
import { type Node } from './types.js';

export const sameName = (l: { parent: number; name: Buffer }, parent: number, name: Buffer) => l.parent === parent && l.name.equals(name);

/** `parent`/`name` is no longer a name of `n`: another known name takes over if it was the main one. */
export function dropName(n: Node, parent: number, name: Buffer): void {
  if (sameName(n, parent, name)) {
    const next = n.links?.pop();
    if (next) {
      n.parent = next.parent;
      n.name = next.name;
    }
  } else if (n.links) n.links = n.links.filter((l) => !sameName(l, parent, name));
}

/** `parent`/`name` is now the main name of `n`; the previous one stays known for hard links. */
export function setName(n: Node, parent: number, name: Buffer): void {
  if (sameName(n, parent, name)) return;
  if (!isDir(n.type)) {
    const links = (n.links ?? []).filter((l) => !sameName(l, parent, name));
    links.push({ parent: n.parent, name: n.name });
    n.links = links.slice(-8);
  }
  n.parent = parent;
  n.name = ownCopy(name);
}

/** The name `fromParent`/`fromName` of `n` became `toParent`/`toName` (rename). */
export function moveName(n: Node, fromParent: number, fromName: Buffer, toParent: number, toName: Buffer): void {
  if (sameName(n, fromParent, fromName)) {
    n.parent = toParent;
    n.name = ownCopy(toName);
    if (n.links) n.links = n.links.filter((l) => !sameName(l, toParent, toName));
  } else {
    if (n.links) n.links = n.links.filter((l) => !sameName(l, fromParent, fromName));
    setName(n, toParent, toName);
  }
}

/** Names remembered in each direction (a few hundred bytes each). */
export const NAME_CACHE = 32_768;

/**
 * Kept as latin1 strings, not Buffers: a small Buffer is a slice of an 8 KiB pool slab and keeps
 * the whole slab alive (measured: 20,000 files held 40 MB of mostly dead slabs).
 */
export function remember(m: Map<string, string>, key: string, value: Buffer): void {
  if (m.size >= NAME_CACHE) m.clear();
  m.set(key, value.toString('latin1'));
}

/** A name copy of its own (not a pool slice, see remember()), for names kept per node. */
export function ownCopy(b: Buffer): Buffer {
  const c = Buffer.allocUnsafeSlow(b.length);
  b.copy(c);
  return c;
}
