/**
 * Names are bytes. Text output shows them losslessly with the escape `ls -b` uses: valid UTF-8
 * prints as itself; a byte that is not part of valid UTF-8, a control byte (below 0x20, 0x7f) and
 * a backslash print as `\xHH` (backslash as `\\`). unescapeName reverses it exactly.
 */

/** Length of the valid UTF-8 sequence starting at b[i] (0 when it is not one). */
function utf8SeqLength(b: Uint8Array, i: number): number {
  const c = b[i];
  const cont = (k: number) => i + k < b.length && (b[i + k] & 0xc0) === 0x80;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) return cont(1) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (!cont(1) || !cont(2)) return 0;
    const c1 = b[i + 1];
    if (c === 0xe0 && c1 < 0xa0) return 0; // overlong
    if (c === 0xed && c1 >= 0xa0) return 0; // surrogates
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    const c1 = b[i + 1];
    if (c === 0xf0 && c1 < 0x90) return 0;
    if (c === 0xf4 && c1 >= 0x90) return 0;
    return 4;
  }
  return 0;
}

/** True when the bytes are valid UTF-8 (so the string form of the name is exact). */
export function isUtf8(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; ) {
    const n = utf8SeqLength(b, i);
    if (n === 0) return false;
    i += n;
  }
  return true;
}

const hex = (c: number) => `\\x${c.toString(16).padStart(2, '0')}`;

/** Name (or path) bytes as printable text, lossless: `caf\xe9.txt`. */
export function escapeName(b: Uint8Array | string): string {
  if (typeof b === 'string') b = Buffer.from(b, 'utf8');
  let out = '';
  for (let i = 0; i < b.length; ) {
    const c = b[i];
    const n = utf8SeqLength(b, i);
    if (n === 0 || c < 0x20 || c === 0x7f) out += hex(c);
    else if (c === 0x5c) out += '\\\\';
    else out += Buffer.from(b.subarray(i, i + n)).toString('utf8');
    i += Math.max(n, 1);
  }
  return out;
}

/** The bytes an escaped name stands for (the inverse of escapeName). */
export function unescapeName(s: string): Buffer {
  const parts: Buffer[] = [];
  let lit = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && s[i + 1] === '\\') {
      lit += '\\';
      i++;
    } else if (s[i] === '\\' && s[i + 1] === 'x' && /^[0-9a-fA-F]{2}$/.test(s.slice(i + 2, i + 4))) {
      parts.push(Buffer.from(lit, 'utf8'), Buffer.from([parseInt(s.slice(i + 2, i + 4), 16)]));
      lit = '';
      i += 3;
    } else lit += s[i];
  }
  parts.push(Buffer.from(lit, 'utf8'));
  return Buffer.concat(parts);
}
