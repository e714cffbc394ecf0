// PROVISIONAL (lead's scaffold; the format owner replaces it).
export const AUTH_TOK_SIZE = 740;
export function buildAuthTok(key: Uint8Array, sig: string, salt: Uint8Array): Buffer {
  const b = Buffer.alloc(AUTH_TOK_SIZE);
  b.writeUInt16LE(0x0004, 0);
  b.writeInt32LE(10, 632);
  b.writeUInt32LE(64, 640);
  b.writeUInt32LE(0x02, 644);
  b.set(key.subarray(0, 64), 648);
  b.write(sig, 712, 'latin1');
  b.set(salt.subarray(0, 8), 729);
  return b;
}
