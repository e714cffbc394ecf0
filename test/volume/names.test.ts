/**
 * Names are bytes and hostile names stay contained (issues #12 item 4, #13): decryptTree,
 * encryptTree, readdirLower and fsck over lower names crafted with the volume's own FNEK.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import type { CipherName } from '../../src/crypto/types.js';
import { encryptFilename, FNEK_PREFIX } from '../../src/format/filename.js';
import { fsck } from '../../src/volume/fsck.js';
import { KeyRing } from '../../src/volume/keyring.js';
import { escapeName, isUtf8, unescapeName } from '../../src/volume/names.js';
import { decryptTree, encryptTree } from '../../src/volume/tree.js';
import { Volume } from '../../src/volume/volume.js';
import { manifest, tempDir, unpackLower } from '../helpers/fixtures.js';

const ring = new KeyRing();
const [fileKey, fnekKey] = ring.addPassphraseSync('names-pass');
const B = (s: string) => Buffer.from(s, 'latin1');
const FNEK_PREFIX_LEN = FNEK_PREFIX.length;
const cat = (...p: Array<string | Buffer>) => Buffer.concat(p.map((x) => Buffer.from(x)));

/** Every path (as bytes, relative) under a directory, without following symlinks. */
function listTree(root: string): Map<string, fs.Stats> {
  const out = new Map<string, fs.Stats>();
  const walk = (rel: Buffer) => {
    const abs = rel.length === 0 ? Buffer.from(root) : cat(root, '/', rel);
    for (const n of fs.readdirSync(abs, { encoding: 'buffer' })) {
      const r = rel.length === 0 ? n : cat(rel, '/', n);
      const st = fs.lstatSync(cat(root, '/', r));
      out.set(r.toString('hex'), st);
      if (st.isDirectory()) walk(r);
    }
  };
  walk(Buffer.alloc(0));
  return out;
}

test('escapeName is lossless and prints UTF-8 as itself', () => {
  assert.equal(escapeName(B('caf\xe9.txt')), 'caf\\xe9.txt');
  assert.equal(escapeName(Buffer.from('café.txt')), 'café.txt');
  assert.equal(escapeName(B('a\\b\nc\x7f')), 'a\\\\b\\x0ac\\x7f');
  assert.equal(escapeName(B('\xed\xa0\x80')), '\\xed\\xa0\\x80'); // a UTF-16 surrogate is not UTF-8
  assert.equal(isUtf8(Buffer.from('ünïcødé 文件')), true);
  assert.equal(isUtf8(B('caf\xe9')), false);
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
    const e = escapeName(b);
    assert.ok(![...e].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f));
    assert.deepEqual(unescapeName(e), Buffer.from(b));
  }));
});

const HOSTILE = ['..', '.', '../../x', 'sub/../../x', 'a/b', '/', '/etc/passwd', 'x\0y', '\0'];

test('hostile encrypted names never make decrypt write outside DEST; ls and fsck report bad-name (property)', async () => {
  const dir = tempDir('ecryptfs-names-');
  try {
    const secret = 'SECRET-OUTSIDE-' + 'z'.repeat(20);
    fs.writeFileSync(join(dir.path, 'secret'), secret);
    fs.mkdirSync(join(dir.path, 'outside'));
    const enc = (name: Uint8Array) => encryptFilename(name, fnekKey, 'aes', 16);
    const nameArb = fc.oneof(
      fc.constantFrom(...HOSTILE).map((s) => ({ bytes: B(s), bad: true })),
      fc.uint8Array({ minLength: 1, maxLength: 20 }).map((u) => {
        const b = Buffer.from(u);
        return { bytes: b, bad: b.includes(0x2f) || b.includes(0) || b.equals(B('.')) || b.equals(B('..')) };
      }),
      fc.constantFrom('caf\xe9.txt', 'ok', 'sub', 'x').map((s) => ({ bytes: B(s), bad: false })),
    );
    interface Node { name: { bytes: Buffer; bad: boolean }; kind: 'file' | 'dir' | 'link'; children: Node[] }
    const nodeArb = (depth: number): fc.Arbitrary<Node> => fc.record({
      name: nameArb,
      kind: fc.constantFrom('file' as const, 'dir' as const, 'link' as const),
      children: depth === 0 ? fc.constant([]) : fc.array(nodeArb(depth - 1), { maxLength: 3 }),
    });
    let run = 0;
    await fc.assert(fc.asyncProperty(fc.array(nodeArb(2), { minLength: 1, maxLength: 5 }), async (nodes) => {
      run++;
      const lower = join(dir.path, `lower${run}`);
      const dest = join(dir.path, `dest${run}`);
      fs.mkdirSync(lower);
      const vol = await Volume.open(lower, ring, { sigs: [fileKey.sig], fnekSig: fnekKey.sig });
      let reachableBad = 0;
      const isBad = new Map<string, boolean>();
      const make = async (lowerDir: Buffer, ns: Node[], underBad: boolean) => {
        const seen = new Set<string>();
        for (const n of ns) {
          const lname = Buffer.from(enc(n.name.bytes));
          if (seen.has(lname.toString())) continue;
          seen.add(lname.toString());
          const lp = lowerDir.length === 0 ? lname : cat(lowerDir, '/', lname);
          isBad.set(lp.toString('hex'), n.name.bad);
          if (n.name.bad && !underBad) reachableBad++;
          if (n.kind === 'dir') {
            await vol.lower.mkdir(lp, 0o755);
            await make(lp, n.children, underBad || n.name.bad);
          } else if (n.kind === 'link') {
            // A lower symlink whose clear target points outside: copied as a link, never followed.
            await vol.lower.symlink(vol.encodeLinkTargetBytes(Buffer.from(join(dir.path, 'secret'))), lp);
          } else {
            const f = await (await import('../../src/volume/file.js')).EcryptfsFile.create(vol.lower, lp, ring, vol.newFileParams(), 0o644);
            await f.write(0, Buffer.from('inside'));
            await f.close();
          }
        }
      };
      await make(Buffer.alloc(0), nodes, false);
      const before = listTree(dir.path);
      const r = await decryptTree(vol, [''], dest);
      const after = listTree(dir.path);
      // Nothing new anywhere but under DEST; nothing outside changed.
      for (const [k, st] of after) {
        const rel = Buffer.from(k, 'hex').toString('latin1');
        if (rel === `dest${run}` || rel.startsWith(`dest${run}/`)) continue;
        assert.ok(before.has(k), `created outside DEST: ${rel}`);
        assert.equal(st.mtimeMs, before.get(k)!.mtimeMs, `changed outside DEST: ${rel}`);
      }
      assert.equal(fs.readFileSync(join(dir.path, 'secret'), 'utf8'), secret);
      assert.deepEqual(fs.readdirSync(join(dir.path, 'outside')), []);
      // Every regular file in DEST is one we wrote ('inside'); links stay links.
      for (const [k, st] of listTree(dest)) {
        const p = cat(dest, '/', Buffer.from(k, 'hex'));
        if (st.isFile()) assert.equal(fs.readFileSync(p, 'utf8'), 'inside');
        for (const comp of Buffer.from(k, 'hex').toString('latin1').split('/')) assert.ok(comp !== '..' && comp !== '.' && comp !== '');
      }
      // Each reachable bad name is one problem (EBADNAME), reported and skipped.
      assert.ok(r.problems.every((p) => (p.error as { code?: string }).code === 'EBADNAME'), r.problems.map((p) => p.error.message).join('\n'));
      assert.equal(r.problems.length, reachableBad);
      // The lossless listing (ls) and fsck flag exactly the bad names.
      for (const e of await vol.readdirLower(Buffer.alloc(0))) assert.equal(!!e.error, isBad.get(e.lowerNameBytes.toString('hex')), escapeName(e.nameBytes));
      const report = await fsck(vol);
      const flagged = new Set(report.entries.filter((e) => e.verdict === 'bad-name').map((e) => e.lowerPathBytes.toString('hex')));
      for (const [k, b] of isBad) assert.equal(flagged.has(k), b, Buffer.from(k, 'hex').toString());
      for (const e of report.entries) if (e.verdict === 'bad-name') assert.equal(e.clearPath, undefined);
    }), { numRuns: 40 });
  } finally {
    dir.cleanup();
  }
});

/** `body` over a new filename-encrypted volume in DIR/lower, DIR a temporary directory removed afterwards. */
async function withFnekVolume(body: (vol: Volume, dir: string, lower: string) => Promise<void>): Promise<void> {
  const dir = tempDir('ecryptfs-names-');
  try {
    const lower = join(dir.path, 'lower');
    fs.mkdirSync(lower);
    await body(await Volume.open(lower, ring, { sigs: [fileKey.sig], fnekSig: fnekKey.sig }), dir.path, lower);
  } finally {
    dir.cleanup();
  }
}

test('decrypt refuses a DEST subdirectory that is a symlink and does not write through it', () =>
  withFnekVolume(async (vol, dir) => {
    const src = join(dir, 'src');
    fs.mkdirSync(join(src, 'sub'), { recursive: true });
    fs.writeFileSync(join(src, 'sub', 'f'), 'data');
    fs.writeFileSync(join(src, 'top'), 'top');
    assert.equal((await encryptTree(vol, [src])).problems.length, 0);
    const dest = join(dir, 'dest');
    fs.mkdirSync(dest);
    fs.mkdirSync(join(dir, 'victim'));
    fs.symlinkSync(join(dir, 'victim'), join(dest, 'sub'));
    const r = await decryptTree(vol, [''], dest);
    assert.equal(r.problems.length, 1);
    assert.match(r.problems[0].error.message, /symlink or not a directory; decrypt does not follow it/);
    assert.deepEqual(fs.readdirSync(join(dir, 'victim')), []);
    assert.equal(fs.readFileSync(join(dest, 'top'), 'utf8'), 'top');
    // A file name replaced by a symlink is replaced, not written through.
    fs.writeFileSync(join(dir, 'victim', 'keep'), 'keep');
    fs.rmSync(join(dest, 'top'));
    fs.symlinkSync(join(dir, 'victim', 'keep'), join(dest, 'top'));
    fs.rmSync(join(dest, 'sub'));
    const r2 = await decryptTree(vol, [''], dest);
    assert.equal(r2.problems.length, 0);
    assert.equal(fs.readFileSync(join(dir, 'victim', 'keep'), 'utf8'), 'keep');
    assert.ok(fs.lstatSync(join(dest, 'top')).isFile());
    assert.equal(fs.readFileSync(join(dest, 'sub', 'f'), 'utf8'), 'data');
  }));

test("decrypt of a lower path ending in '..' or '.' is refused and writes nothing beside DEST", () =>
  withFnekVolume(async (vol, dir) => {
    await vol.mkdir('sub');
    await vol.writeFile('top', Buffer.from('top'));
    const out = join(dir, 'out');
    const dest = join(out, 'dest');
    fs.mkdirSync(dest, { recursive: true });
    const sub = vol.lowerPath('sub');
    const r = await decryptTree(vol, [`${sub}/..`, `${sub}/.`], dest);
    assert.equal(r.problems.length, 2);
    for (const p of r.problems) assert.match(p.error.message, /not a file name/);
    assert.deepEqual(fs.readdirSync(out), ['dest']);
    assert.deepEqual(fs.readdirSync(dest), []);
  }));

test('a plain (not encrypted) symlink target in a filename-encrypted volume reads back as its exact bytes', () =>
  withFnekVolume(async (vol, _dir, lower) => {
    const target = B('caf\xe9/\xff');
    fs.symlinkSync(target, join(lower, 'plainlink'));
    assert.equal(vol.decodeLinkTargetBytes(target).toString('hex'), target.toString('hex'));
    assert.equal((await vol.readlinkLowerBytes(B('plainlink'))).toString('hex'), target.toString('hex'));
  }));

const FN_CONFIGS: Array<[CipherName, number]> = [
  ['aes', 16], ['aes', 24], ['aes', 32], ['blowfish', 16], ['blowfish', 56], ['des3_ede', 24],
  ['twofish', 16], ['twofish', 32], ['cast6', 16], ['cast6', 32], ['cast5', 16],
];

for (const [cipher, keyBytes] of FN_CONFIGS) {
  test(`${cipher}-${keyBytes} names: Latin-1 and invalid UTF-8 round-trip as bytes; 143 bytes fit, 144 are refused`, async () => {
    const dir = tempDir('ecryptfs-names-');
    try {
      const src = join(dir.path, 'src');
      fs.mkdirSync(src);
      const names = [
        B('caf\xe9.txt'),
        B('\xff\xfe\x80 invalid \xc3('),
        Buffer.concat([B('\xe9'.repeat(100)), Buffer.from('x'.repeat(43))]), // 143 bytes
        Buffer.from('é'.repeat(71) + 'x'), // 143 bytes of UTF-8
      ];
      for (const n of names) fs.writeFileSync(cat(src, '/', n), n);
      const tooLong = B('\xe9'.repeat(144));
      fs.writeFileSync(cat(src, '/', tooLong), 'x');
      fs.mkdirSync(cat(src, '/', B('d\xe9')));
      fs.symlinkSync(B('caf\xe9.txt'), cat(src, '/', B('d\xe9'), '/', B('l\xe9')));
      const lower = join(dir.path, 'lower');
      fs.mkdirSync(lower);
      const vol = await Volume.open(lower, ring, { cipher, keyBytes, sigs: [fileKey.sig], fnekSig: fnekKey.sig, fnCipher: cipher, fnKeyBytes: keyBytes });
      assert.equal(vol.nameMax, 143);
      assert.equal(vol.encodeNameBytes(names[2]).length <= 255, true);
      assert.throws(() => vol.encodeNameBytes(tooLong), (e: Error & { code?: string }) => e.code === 'ENAMETOOLONG' && /144 bytes is longer than the 143/.test(e.message));
      const r = await encryptTree(vol, [src]);
      assert.equal(r.problems.length, 1);
      assert.equal((r.problems[0].error as { code?: string }).code, 'ENAMETOOLONG');
      assert.match(r.problems[0].error.message, /\\xe9\\xe9.*144 bytes/);
      for (const n of fs.readdirSync(lower)) assert.ok(n.startsWith('ECRYPTFS_FNEK_ENCRYPTED.') && n.length <= 255);
      const vol2 = await Volume.open(lower, ring, { sigs: [fileKey.sig] });
      const listed = (await vol2.readdirLower(Buffer.alloc(0))).map((e) => e.nameBytes.toString('hex')).sort();
      assert.deepEqual(listed, [...names, B('d\xe9')].map((n) => n.toString('hex')).sort());
      const dest = join(dir.path, 'dest');
      const d = await decryptTree(vol2, [''], dest);
      assert.deepEqual(d.problems, []);
      for (const n of names) assert.deepEqual(fs.readFileSync(cat(dest, '/', n)), n);
      assert.deepEqual(fs.readlinkSync(cat(dest, '/', B('d\xe9'), '/', B('l\xe9')), { encoding: 'buffer' }), B('caf\xe9.txt'));
      const report = await fsck(vol2);
      assert.equal(report.counts.ok, report.entries.length);
      const cafe = report.entries.find((e) => e.clearPathBytes?.equals(names[0]));
      assert.equal(cafe?.clearPath, 'caf\\xe9.txt');
      assert.match(cafe!.detail, /not UTF-8/);
    } finally {
      dir.cleanup();
    }
  });
}

test('kernel-made 143-byte and non-ASCII names (aes256-fnek corpus) decrypt to their exact bytes', async () => {
  const m = manifest('aes256-fnek');
  const lower = await unpackLower('aes256-fnek');
  const out = tempDir('ecryptfs-names-');
  try {
    const keys = new KeyRing();
    const [fk, nk] = keys.addPassphraseSync(m.passphrase);
    const vol = await Volume.open(lower.path, keys, { sigs: [fk.sig], fnekSig: m.sigs.ecryptfs_fnek_sig ?? nk.sig });
    const r = await decryptTree(vol, [''], out.path);
    assert.deepEqual(r.problems, []);
    const long = m.files.filter((f) => Buffer.byteLength(f.path.split('/').pop()!) >= 142);
    assert.ok(long.length >= 3);
    for (const f of m.files) {
      const st = fs.lstatSync(join(out.path, f.path));
      assert.equal(st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'symlink', f.type, f.path);
    }
    const report = await fsck(vol);
    assert.equal(report.counts['bad-name'], 0);
    for (const f of long) assert.ok(report.entries.some((e) => e.clearPath === f.path && e.verdict === 'ok'), f.path);
  } finally {
    lower.cleanup();
    out.cleanup();
  }
});

test('decodeNameExact: exact only where encodeNameBytes gives the very lower name back (property)', async () => {
  const dir = tempDir('ecryptfs-names-exact-');
  try {
    const [, otherFnek] = ring.addPassphraseSync('names-exact-other');
    const vol = await Volume.open(dir.path, ring, { sigs: [fileKey.sig], fnekSig: fnekKey.sig, fnCipher: 'aes', fnKeyBytes: 16 });
    const clearName = fc.uint8Array({ minLength: 1, maxLength: 143 }).filter((b) => !b.includes(0) && !b.includes(0x2f) && !(b.length <= 2 && b.every((x) => x === 0x2e)));
    const ALPHA = '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_';
    fc.assert(
      fc.property(clearName, fc.nat(), fc.nat(63), (name, at, ch) => {
        const lower = vol.encodeNameBytes(name);
        const r = vol.decodeNameExact(lower);
        assert.equal(r.exact, true);
        assert.deepEqual(r.clear, Buffer.from(name));
        // A changed character: if it still decodes and is called exact, it must encode back to itself.
        const m = Buffer.from(lower);
        const i = FNEK_PREFIX_LEN + (at % (m.length - FNEK_PREFIX_LEN));
        m[i] = ALPHA.charCodeAt(ch);
        let got: { clear: Buffer; exact: boolean } | undefined;
        try {
          got = vol.decodeNameExact(m);
        } catch {
          got = undefined;
        }
        if (got?.exact) assert.deepEqual(vol.encodeNameBytes(got.clear), m);
        // The same name under another FNEK of the ring, or this FNEK at another AES size: readable, never exact.
        for (const [fnek, kb] of [[otherFnek, 16], [fnekKey, 32]] as const) {
          const foreign = Buffer.from(encryptFilename(name, fnek, 'aes', kb), 'latin1');
          const f = vol.decodeNameExact(foreign);
          assert.deepEqual(f.clear, Buffer.from(name));
          assert.equal(f.exact, false);
        }
      }),
      { numRuns: Number(process.env.FUZZ_RUNS ?? 300) },
    );
    // Plain names are shown as they are, but a lookup of that clear name encrypts it: not exact.
    assert.equal(vol.decodeNameExact(B('plain.txt')).exact, false);
  } finally {
    dir.cleanup();
  }
});
