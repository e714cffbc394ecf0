/**
 * MD5 of four 32-byte messages at once, in WebAssembly SIMD (i32x4 lanes): the extent IVs
 * (extentiv.ts) of a batch come four at a time. One IV costs the scalar TypeScript MD5 ~0.18 us,
 * ~45 us per MiB of extents, as much as half the AES decryption of that MiB; four lanes do the
 * same 64 steps for four messages.
 *
 * The module is generated here (no toolchain, no binary in the tree). Layout of its memory:
 * bytes 0..15 the message's first 16 bytes (the root IV, the same for every lane), then groups
 * of 64 bytes: words 4..7 of four messages, lane by lane (word k of lane l at 16k + 4l);
 * `run(n)` replaces 2n groups in place by their digests, one after another (16 bytes each).
 * Words 8..15 are MD5's padding for a 32-byte message, constants.
 */

/** Bytes of the module's memory (one WebAssembly page). */
export const MD5X4_BYTES = 65536;

export interface Md5x4 {
  /** The module's memory (see the layout above). */
  readonly mem: Uint8Array;
  readonly words: Int32Array;
  /** Digest `pairs` pairs of groups of four messages (8 messages each), in place. */
  run(pairs: number): void;
}

const S = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21];
const K = Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) >>> 0);
const INIT = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];
/** Words 8..15 of every message: the 0x80 byte after 32 bytes, then the bit length 256. */
const PAD: Record<number, number> = { 8: 0x80, 14: 256 };

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n) b |= 0x80;
    out.push(b);
  } while (n);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  n |= 0;
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) return [...out, b];
    out.push(b | 0x80);
  }
}

/** The module's bytes. */
function md5x4Module(): Uint8Array {
  const LOCAL_GET = 0x20, LOCAL_SET = 0x21, LOCAL_TEE = 0x22, I32_CONST = 0x41;
  const simd = (op: number) => [0xfd, ...uleb(op)];
  const V128_LOAD = (off: number) => [...simd(0x00), 4, ...uleb(off)];
  const V128_STORE = (off: number) => [...simd(0x0b), 4, ...uleb(off)];
  const splatConst = (v: number) => {
    const b: number[] = [];
    for (let l = 0; l < 4; l++) b.push(v & 255, (v >>> 8) & 255, (v >>> 16) & 255, (v >>> 24) & 255);
    return [...simd(0x0c), ...b];
  };
  const shuffle = (lanes: number[]) => [...simd(0x0d), ...lanes];
  const [NOT, OR, XOR, BITSELECT] = [0x4d, 0x50, 0x51, 0x52].map(simd);
  const [SHL, SHR_U, ADD] = [0xab, 0xad, 0xae].map(simd);
  // Locals: 0 pairs left (param), 1 address, then v128: the root words (4), t0..t3, and for each
  // of the two groups of a pair its words 4..7, a, b, c, d and x. Two groups per turn: one group's
  // steps wait on each other (MD5 is serial), the other's fill those waits.
  const N = 0, P = 1, M = 2, T = 6;
  const grp = (q: number) => 10 + 9 * q; // words 4..7 at +0..3, a b c d at +4..7, x at +8
  const get = (l: number) => [LOCAL_GET, l], set = (l: number) => [LOCAL_SET, l];
  const code: number[] = [];
  // The root words, splatted once.
  for (let k = 0; k < 4; k++) code.push(I32_CONST, ...sleb(4 * k), 0x28, 2, 0, ...simd(0x11), ...set(M + k));
  code.push(I32_CONST, 16, ...set(P));
  code.push(0x02, 0x40, 0x03, 0x40); // block, loop
  code.push(...get(N), 0x45, 0x0d, 1); // n == 0: out
  const regs: number[][] = [];
  for (let q = 0; q < 2; q++) {
    for (let k = 0; k < 4; k++) code.push(...get(P), ...V128_LOAD(64 * q + 16 * k), ...set(grp(q) + k));
    for (let k = 0; k < 4; k++) code.push(...splatConst(INIT[k]), ...set(grp(q) + 4 + k));
    regs.push([0, 1, 2, 3].map((k) => grp(q) + 4 + k));
  }
  const word = (q: number, g: number) => (g < 4 ? M + g : grp(q) + g - 4);
  for (let i = 0; i < 64; i++) {
    const r = i >> 4;
    const g = r === 0 ? i : r === 1 ? (5 * i + 1) % 16 : r === 2 ? (3 * i + 5) % 16 : (7 * i) % 16;
    const s = S[4 * r + (i & 3)];
    for (let q = 0; q < 2; q++) {
      const [a, b, c, d] = regs[q], X = grp(q) + 8;
      // a + K + M first: they do not wait for the previous step (padding words are constants, folded into K).
      code.push(...get(a), ...splatConst((K[i] + (g < 8 ? 0 : (PAD[g] ?? 0))) >>> 0), ...ADD);
      if (g < 8) code.push(...get(word(q, g)), ...ADD);
      if (r === 0) code.push(...get(c), ...get(d), ...get(b), ...BITSELECT); // (b & c) | (~b & d)
      else if (r === 1) code.push(...get(b), ...get(c), ...get(d), ...BITSELECT); // (d & b) | (~d & c)
      else if (r === 2) code.push(...get(b), ...get(c), ...XOR, ...get(d), ...XOR);
      else code.push(...get(c), ...get(b), ...get(d), ...NOT, ...OR, ...XOR); // c ^ (b | ~d)
      code.push(...ADD);
      code.push(LOCAL_TEE, X, I32_CONST, ...sleb(s), ...SHL, ...get(X), I32_CONST, ...sleb(32 - s), ...SHR_U, ...OR);
      code.push(...get(b), ...ADD, ...set(a));
      regs[q] = [d, a, b, c];
    }
  }
  const lo = (o: number) => [o, o + 1, o + 2, o + 3];
  const halves = (hi: boolean) => Array.from({ length: 16 }, (_, j) => (j < 8 ? j : j + 8) + (hi ? 8 : 0));
  for (let q = 0; q < 2; q++) {
    const fin = regs[q];
    for (let k = 0; k < 4; k++) code.push(...get(fin[k]), ...splatConst(INIT[k]), ...ADD, ...set(fin[k]));
    // Transpose: lanes (a_l, b_l, c_l, d_l) become digest l.
    code.push(...get(fin[0]), ...get(fin[1]), ...shuffle([...lo(0), ...lo(16), ...lo(4), ...lo(20)]), ...set(T));
    code.push(...get(fin[2]), ...get(fin[3]), ...shuffle([...lo(0), ...lo(16), ...lo(4), ...lo(20)]), ...set(T + 1));
    code.push(...get(fin[0]), ...get(fin[1]), ...shuffle([...lo(8), ...lo(24), ...lo(12), ...lo(28)]), ...set(T + 2));
    code.push(...get(fin[2]), ...get(fin[3]), ...shuffle([...lo(8), ...lo(24), ...lo(12), ...lo(28)]), ...set(T + 3));
    for (let l = 0; l < 4; l++) {
      const [x, y] = l < 2 ? [T, T + 1] : [T + 2, T + 3];
      code.push(...get(P), ...get(x), ...get(y), ...shuffle(halves(l % 2 === 1)), ...V128_STORE(64 * q + 16 * l));
    }
  }
  code.push(...get(P), I32_CONST, ...sleb(128), 0x6a, ...set(P)); // p += 128
  code.push(...get(N), I32_CONST, 1, 0x6b, ...set(N)); // n -= 1
  code.push(0x0c, 0, 0x0b, 0x0b); // br loop, end loop, end block
  code.push(0x0b); // end function
  const body = [2, 1, 0x7f, 26, 0x7b, ...code]; // locals: 1 i32, 26 v128
  const section = (id: number, bytes: number[]) => [id, ...uleb(bytes.length), ...bytes];
  const name = (s: string) => [s.length, ...Array.from(s, (ch) => ch.charCodeAt(0))];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, [1, 0x60, 1, 0x7f, 0]), // type: (i32) -> ()
    ...section(3, [1, 0]),
    ...section(5, [1, 0, 1]), // one memory of one page
    ...section(7, [2, ...name('m'), 2, 0, ...name('f'), 0, 0]),
    ...section(10, [1, ...uleb(body.length), ...body]),
  ]);
}

let made: Md5x4 | null | undefined;

interface Wasm {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object) => { exports: Record<string, unknown> };
}

/** The four-lane MD5, or null where WebAssembly SIMD is not there (ECRYPTFS_MD5_SIMD=0 too). */
export function md5x4(): Md5x4 | null {
  if (made !== undefined) return made;
  made = null;
  // The project's TypeScript libs do not declare WebAssembly (a DOM lib); Node has it.
  const wasm = (globalThis as { WebAssembly?: Wasm }).WebAssembly;
  if (process.env.ECRYPTFS_MD5_SIMD === '0' || !wasm) return made;
  try {
    const inst = new wasm.Instance(new wasm.Module(md5x4Module()));
    const memory = inst.exports.m as { buffer: ArrayBuffer };
    const f = inst.exports.f as (n: number) => void;
    made = { mem: new Uint8Array(memory.buffer), words: new Int32Array(memory.buffer), run: f };
  } catch {
    made = null;
  }
  return made;
}
