/** A small deterministic generator (mulberry32), so a failing seed or tree can be replayed. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Deterministic filler bytes (xorshift32), so fast-check shrinks a seed, not megabytes of data. */
export function seededBytes(seed: number, n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = (seed | 0) || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    b[i] = x & 255;
  }
  return b;
}
