/** The 740-byte struct ecryptfs_auth_tok the kernel module reads from the user keyring (§9). */
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
export function parseAuthTok(b: Buffer): { key: Buffer; sig: string; salt: Buffer } {
  if (b.length < AUTH_TOK_SIZE || b.readUInt16LE(0) !== 0x0004 || b.readUInt16LE(2) !== 0) throw new Error('not an eCryptfs passphrase auth token');
  return { key: Buffer.from(b.subarray(648, 712)), sig: b.subarray(712, 728).toString('latin1'), salt: Buffer.from(b.subarray(729, 737)) };
}
