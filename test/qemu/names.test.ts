/**
 * Byte names, special files and xattrs against the real kernel module, both ways, in one boot:
 * (a) the kernel mounts a lower dir ecryptfs-ts wrote (Latin-1, invalid UTF-8 and 143-byte names,
 *     a FIFO, a device node, a user.* xattr and an ACL) and sees exactly the clear tree;
 * (b) the kernel writes the same kinds of entries, which `decryptTree` turns back into exactly
 *     what the kernel showed; the kernel refuses a 144-byte name as we do.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { join } from 'node:path';
import { mknodAt, S_IFCHR, S_IFIFO, devMajorMinor } from '../../src/lower/mknod.js';
import { getXattrIfAny, setXattr } from '../../src/lower/xattr.js';
import { KeyRing } from '../../src/volume/keyring.js';
import { decryptTree, encryptTree } from '../../src/volume/tree.js';
import { Volume } from '../../src/volume/volume.js';
import { tempDir } from '../helpers/fixtures.js';
import { kernelSkipReason, QEMU_DIR, runInKernel } from './kernel.js';

const skip = kernelSkipReason();
const B = (s: string) => Buffer.from(s, 'latin1');
const cat = (...p: Array<string | Buffer>) => Buffer.concat(p.map((x) => Buffer.from(x)));

/** The guest's listing format (guest-names.sh), made on the host: hex path -> the other fields. */
async function listing(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (rel: Buffer) => {
    for (const n of fs.readdirSync(cat(root, '/', rel), { encoding: 'buffer' })) {
      const r = rel.length === 0 ? n : cat(rel, '/', n);
      const abs = cat(root, '/', r);
      const st = fs.lstatSync(abs);
      const mode = (st.mode & 0o7777).toString(8);
      let t: string;
      let v: string;
      if (st.isSymbolicLink()) [t, v] = ['l', fs.readlinkSync(abs, { encoding: 'buffer' }).toString('hex')];
      else if (st.isDirectory()) [t, v] = ['d', mode];
      else if (st.isFIFO()) [t, v] = ['p', mode];
      else if (st.isCharacterDevice()) [t, v] = ['c', `${mode} ${devMajorMinor(st.rdev).map((x) => x.toString(16)).join(':')}`];
      else [t, v] = ['f', createHash('sha256').update(fs.readFileSync(abs)).digest('hex')];
      const k = t === 'l' ? undefined : await getXattrIfAny(abs, 'user.k');
      const a = t === 'l' ? undefined : await getXattrIfAny(abs, 'system.posix_acl_access');
      out.set(cat('./', r).toString('hex'), [t, v, k ? k.toString() : '-', a ? a.toString('hex') : '-'].join('\t'));
      if (st.isDirectory()) await walk(r);
    }
  };
  await walk(Buffer.alloc(0));
  return out;
}

function parse(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n').filter(Boolean)) {
    const [t, path, ...rest] = line.split('\t');
    out.set(path, [t, ...rest].join('\t'));
  }
  return out;
}

test('the kernel and ecryptfs-ts agree on Latin-1 and 143-byte names, FIFOs, device nodes, xattrs and ACLs, both ways', { skip, timeout: 20 * 60 * 1000 }, async () => {
  const t = tempDir('ecryptfs-kernames-');
  try {
    const pass = 'kernel-names-pass';
    const clear = join(t.path, 'clear');
    fs.mkdirSync(clear);
    const c = (p: Buffer | string) => cat(clear, '/', p);
    fs.writeFileSync(c(B('caf\xe9.txt')), 'latin');
    fs.writeFileSync(c(B('\xe9'.repeat(143))), 'long');
    fs.mkdirSync(c(B('d\xff')));
    fs.writeFileSync(c(B('d\xff/f\x80')), 'x');
    await mknodAt(c(B('fifo\xe9')), S_IFIFO | 0o640, 0);
    await mknodAt(c('null'), S_IFCHR | 0o666, fs.statSync('/dev/null').rdev);
    fs.symlinkSync(B('caf\xe9.txt'), c(B('l\xe9')));
    // An ACL (user 4321 may read) as the kernel stores it: system.posix_acl_access on the lower file.
    fs.writeFileSync(join(t.path, 'acl-probe'), '');
    execFileSync('setfacl', ['-m', 'u:4321:r', join(t.path, 'acl-probe')]);
    const acl = (await getXattrIfAny(join(t.path, 'acl-probe'), 'system.posix_acl_access'))!;
    await setXattr(c(B('caf\xe9.txt')), 'user.k', Buffer.from('v'));
    await setXattr(c(B('caf\xe9.txt')), 'system.posix_acl_access', acl);
    const want = await listing(clear);
    const volDir = join(t.path, 'ours');
    fs.mkdirSync(volDir);
    const ring = new KeyRing();
    const [file] = await ring.addPassphrase(pass);
    const vol = await Volume.open(volDir, ring, { sigs: [file.sig], fnekSig: file.sig });
    const e = await encryptTree(vol, [clear]);
    assert.deepEqual(e.problems, []);
    assert.equal(want.get(cat('./', B('caf\xe9.txt')).toString('hex'))!.split('\t')[3], acl.toString('hex'));

    const inDir = join(t.path, 'in');
    fs.mkdirSync(inDir);
    execFileSync('tar', ['cf', join(inDir, 'ours.tar'), '-C', volDir, '.']);
    fs.writeFileSync(join(inDir, 'ours.xattrs'), execFileSync('getfattr', ['-h', '-R', '-d', '-m', '-', '-e', 'hex', '.'], { cwd: volDir }));
    fs.writeFileSync(join(inDir, 'pass'), pass);
    fs.writeFileSync(join(inDir, 'opts'), `ecryptfs_sig=${file.sig},ecryptfs_fnek_sig=${file.sig},ecryptfs_cipher=aes,ecryptfs_key_bytes=16`);
    fs.writeFileSync(join(inDir, 'acl.hex'), acl.toString('hex'));
    vol.close();

    const out = join(t.path, 'out');
    const run = runInKernel(inDir, out, join(QEMU_DIR, 'guest-names.sh'));
    assert.equal(run.code, 0, run.log);
    const log = fs.readFileSync(join(out, 'guest.log'), 'utf8');
    assert.doesNotMatch(log, /FAILED/, log);
    // (a) The kernel reads our lower dir as the clear tree, byte for byte.
    assert.deepEqual(parse(fs.readFileSync(join(out, 'ours.tsv'), 'utf8')), want);
    // (b) We decrypt the kernel's lower dir into what the kernel showed.
    assert.equal(fs.readFileSync(join(out, 'name144.txt'), 'utf8').trim(), '144 refused');
    const kernelSaw = parse(fs.readFileSync(join(out, 'kern.tsv'), 'utf8'));
    assert.equal(kernelSaw.size, 7);
    const klower = join(t.path, 'klower');
    fs.mkdirSync(klower);
    execFileSync('tar', ['xf', join(out, 'kern.tar'), '-C', klower]);
    execFileSync('setfattr', ['-h', `--restore=${join(out, 'kern.xattrs')}`], { cwd: klower });
    const kring = new KeyRing();
    await kring.addPassphrase(pass);
    const kvol = await Volume.open(klower, kring, { readOnly: true });
    const dec = join(t.path, 'dec');
    const r = await decryptTree(kvol, [''], dec);
    assert.deepEqual(r.problems.map((p) => p.error.message), []);
    assert.deepEqual(r.notes, []);
    assert.deepEqual(await listing(dec), kernelSaw);
    kvol.close();
  } finally {
    t.cleanup();
  }
});
