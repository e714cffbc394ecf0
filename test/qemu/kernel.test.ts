/**
 * Byte compatibility with the real kernel module, both ways, in one boot of Debian's kernel:
 * (a) the kernel mounts lower dirs ecryptfs-ts wrote, for every cipher and key size, with and
 *     without filename encryption and with xattr metadata, and reads every file, name and link;
 * (b) the kernel writes fresh random trees with the same options, which ecryptfs-ts decrypts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, symlinkSync, readdirSync, lstatSync, readlinkSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { CipherName } from '../../src/crypto/types.js';
import { KeyRing } from '../../src/volume/keyring.js';
import { Volume } from '../../src/volume/volume.js';
import { decryptTree, encryptTree } from '../../src/volume/tree.js';
import { tempDir } from '../helpers/fixtures.js';
import { kernelSkipReason, QEMU_DIR, runInKernel } from './kernel.js';
import { mountVolume } from '../mount/harness.js';

const skip = kernelSkipReason();

interface Config {
  name: string;
  cipher: CipherName;
  keyBytes: number;
  fnek: 'none' | 'same' | 'fnek';
  xattr?: boolean;
  /** Written through an ecryptfs-ts FUSE mount instead of the offline encoder. */
  viaMount?: boolean;
}

const CONFIGS: Config[] = [
  ...(
    [['aes', 16], ['aes', 24], ['aes', 32], ['blowfish', 16], ['blowfish', 56], ['des3_ede', 24], ['twofish', 16], ['twofish', 32], ['cast6', 16], ['cast6', 32], ['cast5', 16]] as Array<[CipherName, number]>
  ).map(([cipher, keyBytes]) => ({ name: `${cipher}-${keyBytes}-fnek`, cipher, keyBytes, fnek: 'same' as const })),
  { name: 'aes-16-plain', cipher: 'aes', keyBytes: 16, fnek: 'none' },
  { name: 'twofish-16-plain', cipher: 'twofish', keyBytes: 16, fnek: 'none' },
  { name: 'cast6-16-plain', cipher: 'cast6', keyBytes: 16, fnek: 'none' },
  { name: 'aes-16-addfnek', cipher: 'aes', keyBytes: 16, fnek: 'fnek' },
  { name: 'aes-16-xattr', cipher: 'aes', keyBytes: 16, fnek: 'none', xattr: true },
  { name: 'aes-32-mount', cipher: 'aes', keyBytes: 32, fnek: 'same', viaMount: true },
  { name: 'twofish-32-mount', cipher: 'twofish', keyBytes: 32, fnek: 'same', viaMount: true },
];

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A random clear tree: boundary sizes, random sizes and names (UTF-8, 143 bytes), a subdir, links. */
function makeClearTree(dir: string, seed: number): void {
  const rnd = prng(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  mkdirSync(join(dir, 'sub dir'), { recursive: true });
  for (const size of [0, 1, 4095, 4096, 4097, 8192 + 1]) writeFileSync(join(dir, `size${size}`), bytes(size));
  const alpha = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-.';
  for (let i = 0; i < 4; i++) {
    let name = '';
    const len = 1 + int(60);
    for (let j = 0; j < len; j++) name += alpha[int(alpha.length)];
    name = name.replace(/^\.+/, 'x').trim() || 'x';
    writeFileSync(join(dir, 'sub dir', `${i}-${name}`), bytes(int(100000)));
  }
  writeFileSync(join(dir, 'ünïcødé näme'), bytes(777));
  writeFileSync(join(dir, 'n'.repeat(143)), bytes(10));
  symlinkSync('sub dir', join(dir, 'link-to-dir'));
  symlinkSync('../size1', join(dir, 'sub dir', 'relative link'));
  // Names are bytes: Latin-1, an invalid UTF-8 sequence, 143 non-ASCII bytes (the limit).
  const d = Buffer.from(dir);
  const at = (name: Buffer) => Buffer.concat([d, Buffer.from('/'), name]);
  writeFileSync(at(Buffer.from('caf\xe9.txt', 'latin1')), bytes(33));
  writeFileSync(at(Buffer.from([0xff, 0xfe, 0x2d, 0x80])), bytes(5));
  writeFileSync(at(Buffer.alloc(143, 0xe9)), bytes(7));
  symlinkSync(Buffer.from('caf\xe9.txt', 'latin1'), at(Buffer.from('latin1-link')));
  // Every file type the kernel stores without a header: a FIFO and device nodes (sockets cannot
  // travel in a tar; the guest makes one through the kernel mount).
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  execFileSync('mknod', [join(dir, 'sub dir', 'null-like'), 'c', '1', '3']);
  execFileSync('mknod', [join(dir, 'loop-like'), 'b', '7', '200']);
  mksock(join(dir, 'sub dir', 'socket'));
}

/** A socket inode (coreutils' mknod cannot make one). */
function mksock(path: string): void {
  execFileSync('python3', ['-c', 'import os, stat, sys; os.mknod(sys.argv[1], stat.S_IFSOCK | 0o644)', path]);
}

/** tar leaves sockets out: the lower paths of a tree's sockets, one a line, to make them again. */
function socketList(dir: string): string {
  return execFileSync('find', ['.', '-type', 's'], { cwd: dir, encoding: 'latin1' });
}

/** Path bytes as the guest lists them (hex), so that any byte survives the comparison. */
const hexOf = (b: Buffer) => b.toString('hex');

/** hex(path) -> 'f sha256' | 'l hex(target)' | 'd' | 'p' | 's' | 'c maj:min' | 'b maj:min', './'-prefixed like the guest's listing. */
function listTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: Buffer, rel: Buffer) => {
    for (const n of readdirSync(d, { encoding: 'buffer' })) {
      const p = Buffer.concat([d, Buffer.from('/'), n]);
      const r = Buffer.concat([rel, Buffer.from('/'), n]);
      const st = lstatSync(p);
      const dev = () => `${(st.rdev >> 8).toString(16)}:${(st.rdev & 0xff).toString(16)}`;
      if (st.isSymbolicLink()) out.set(hexOf(r), `l ${hexOf(readlinkSync(p, { encoding: 'buffer' }))}`);
      else if (st.isDirectory()) {
        out.set(hexOf(r), 'd');
        walk(p, r);
      } else if (st.isFIFO()) out.set(hexOf(r), 'p');
      else if (st.isSocket()) out.set(hexOf(r), 's');
      else if (st.isCharacterDevice()) out.set(hexOf(r), `c ${dev()}`);
      else if (st.isBlockDevice()) out.set(hexOf(r), `b ${dev()}`);
      else out.set(hexOf(r), `f ${createHash('sha256').update(readFileSync(p)).digest('hex')}`);
    }
  };
  walk(Buffer.from(dir), Buffer.from('.'));
  return out;
}

function parseListing(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n').filter(Boolean)) {
    const [t, path, v] = line.split('\t');
    out.set(path, t === 'd' || t === 'p' || t === 's' ? t : `${t} ${v}`);
  }
  return out;
}

test('the real kernel reads what ecryptfs-ts writes and ecryptfs-ts reads what the kernel writes', { skip, timeout: 25 * 60 * 1000 }, async () => {
  const seed = Number(process.env.ECRYPTFS_SEED ?? Date.now() % 1e9);
  const t = tempDir('ecryptfs-kernel-');
  try {
    const inDir = join(t.path, 'in');
    const clear = join(inDir, 'clear');
    mkdirSync(join(inDir, 'ours'), { recursive: true });
    makeClearTree(clear, seed);
    const want = listTree(clear);
    const params: string[] = [];
    for (const c of CONFIGS) {
      const pass = `kpass-${c.name}`;
      const ring = new KeyRing();
      const [file, fnekKey] = await ring.addPassphrase(pass);
      const fnekSig = c.fnek === 'none' ? null : c.fnek === 'same' ? file.sig : fnekKey.sig;
      const lower = join(t.path, 'ours', c.name);
      mkdirSync(lower, { recursive: true });
      const vol = await Volume.open(lower, ring, { cipher: c.cipher, keyBytes: c.keyBytes, sigs: [file.sig], fnekSig, xattrMetadata: c.xattr });
      if (c.viaMount) {
        const m = await mountVolume(`ecryptfs_cipher=${c.cipher},ecryptfs_key_bytes=${c.keyBytes},ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y`, { lower, passphrase: pass });
        try {
          execFileSync('cp', ['-a', `${clear}/.`, `${m.upper}/`]);
        } finally {
          await m.cleanup();
        }
      } else {
        const r = await encryptTree(vol, [clear]);
        assert.deepEqual(r.problems, [], `${c.name}: encrypt`);
      }
      execFileSync('tar', ['cf', join(inDir, 'ours', `${c.name}.tar`), '-C', lower, '.'], { stdio: ['ignore', 'ignore', 'ignore'] });
      writeFileSync(join(inDir, 'ours', `${c.name}.sockets`), socketList(lower), 'latin1');
      if (c.xattr) writeFileSync(join(inDir, 'ours', `${c.name}.xattrs`), execFileSync('getfattr', ['-h', '-R', '-d', '-m', '-', '-e', 'hex', '.'], { cwd: lower }));
      const opts = [`ecryptfs_sig=${file.sig}`, `ecryptfs_cipher=${c.cipher}`, `ecryptfs_key_bytes=${c.keyBytes}`];
      if (fnekSig) opts.push(`ecryptfs_fnek_sig=${fnekSig}`);
      if (c.xattr) opts.push('ecryptfs_xattr_metadata');
      params.push([c.name, pass, c.fnek === 'fnek' ? 'fnek' : 'plain', opts.join(',')].join('\t'));
      vol.close();
    }
    writeFileSync(join(inDir, 'params.tsv'), params.join('\n') + '\n');
    const out = join(t.path, 'out');
    const run = runInKernel(inDir, out, join(QEMU_DIR, 'guest-compat.sh'));
    assert.equal(run.code, 0, run.log);
    const guestLog = readFileSync(join(out, 'guest.log'), 'utf8');
    assert.doesNotMatch(guestLog, /FAILED/, guestLog);
    for (const c of CONFIGS) {
      // (a) what the kernel read from our lower dir equals the clear tree.
      const seen = parseListing(readFileSync(join(out, 'ours', `${c.name}.tsv`), 'utf8'));
      assert.deepEqual(seen, want, `${c.name}: kernel reading ecryptfs-ts's lower dir (seed ${seed})`);
      // (b) what we decrypt from the kernel's lower dir equals what the kernel showed.
      const kernelSaw = parseListing(readFileSync(join(out, 'kern', `${c.name}.tsv`), 'utf8'));
      const klower = join(t.path, 'kern', c.name);
      mkdirSync(klower, { recursive: true });
      execFileSync('tar', ['xf', join(out, 'kern', `${c.name}.tar`), '-C', klower]);
      const socks = join(out, 'kern', `${c.name}.sockets`);
      if (existsSync(socks)) for (const p of readFileSync(socks, 'latin1').split('\n').filter(Boolean)) mksock(join(klower, p)); // socket names here are ASCII
      const xattrs = join(out, 'kern', `${c.name}.xattrs`);
      if (c.xattr && existsSync(xattrs)) execFileSync('setfattr', ['-h', `--restore=${xattrs}`], { cwd: klower });
      const ring = new KeyRing();
      await ring.addPassphrase(`kpass-${c.name}`);
      const vol = await Volume.open(klower, ring, { readOnly: true });
      const dec = join(t.path, 'dec', c.name);
      const r = await decryptTree(vol, [''], dec);
      assert.deepEqual(r.problems.map((p) => p.error.message), [], `${c.name}: decrypting the kernel's lower dir`);
      assert.deepEqual(listTree(dec), kernelSaw, `${c.name}: ecryptfs-ts reading the kernel's lower dir (seed ${seed})`);
      vol.close();
    }
  } finally {
    t.cleanup();
  }
});
