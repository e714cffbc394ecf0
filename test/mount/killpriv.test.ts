/**
 * setuid/setgid on write, truncate and O_TRUNC open through a root mount (FUSE_HANDLE_KILLPRIV_V2:
 * the daemon clears them, as a local filesystem does for a caller without CAP_FSETID), and the
 * kernel's security.capability question asked once per file instead of before every write(2).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, copyFileSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freshUser, mountSkipReason, mountVolume, runAs, sh, type TestMount } from './harness.js';

const skip = mountSkipReason();
const OWNER = 'etkill1';
const MEMBER = 'etkill2';
const OTHER = 'etkill3';
const OPTS = 'ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y';
let m: TestMount;
let ownerUid = 0;
let ownerGid = 0;
let memberUid = 0;

before(async () => {
  if (skip) return;
  // The owner's group outlives its user while another user is in it (userdel leaves it).
  removeUsers();
  ({ uid: ownerUid, gid: ownerGid } = freshUser(OWNER));
  memberUid = freshUser(MEMBER).uid;
  freshUser(OTHER);
  sh(`usermod -aG ${OWNER} ${MEMBER}`);
  // Lower and mount point root's (no nosuid added): files are made by root and given away.
  m = await mountVolume(OPTS);
  chmodSync(m.root, 0o755);
});

after(async () => {
  if (skip) return;
  await m?.cleanup();
  removeUsers();
});

function removeUsers(): void {
  for (const u of [MEMBER, OTHER, OWNER]) sh(`pkill -9 -u ${u} 2>/dev/null; userdel -r ${u} 2>/dev/null`);
  sh(`groupdel ${OWNER} 2>/dev/null`);
}

const mode = (p: string) => statSync(p).mode & 0o7777;

/** A file of the owner's (group: the owner's, which MEMBER is in) with `bits`. */
function ownersFile(name: string, bits: number, from?: string): string {
  const f = join(m.upper, name);
  if (from) copyFileSync(from, f);
  else writeFileSync(f, 'hello\n');
  chownSync(f, ownerUid, ownerGid);
  chmodSync(f, bits);
  assert.equal(mode(f), bits);
  return f;
}

test('a group member writing another user\'s setuid file: the write goes through and both bits go, at once for exec', { skip }, () => {
  const f = ownersFile('id-copy', 0o6775, '/usr/bin/id');
  let r = runAs(MEMBER, `${f} -u`);
  assert.equal(r.out.trim(), String(ownerUid), 'setuid honoured before the write');
  // On a local filesystem this append works and clears setuid/setgid; the kernel's own clearing
  // (a SETATTR of the mode, run as the caller) was refused here: the write failed with EIO.
  r = runAs(MEMBER, `printf '\\0' >> ${f} && ${f} -u`);
  assert.equal(r.code, 0, r.out);
  assert.equal(r.out.trim(), String(memberUid), 'the modified file no longer runs as its owner');
  assert.equal(mode(f), 0o775);
});

test('the owner\'s write, truncate and O_TRUNC opens clear setuid/setgid; root\'s write keeps them', { skip }, () => {
  const w = ownersFile('w', 0o6755);
  assert.equal(runAs(OWNER, `echo more >> ${w}`).code, 0);
  assert.equal(mode(w), 0o755);
  const t = ownersFile('t', 0o4755);
  assert.equal(runAs(OWNER, `truncate -s 1 ${t}`).code, 0);
  assert.equal(mode(t), 0o755);
  const o = ownersFile('o', 0o4755);
  assert.equal(runAs(OWNER, `: > ${o}`).code, 0);
  assert.equal(mode(o), 0o755);
  const f = ownersFile('f', 0o4755);
  assert.equal(runAs(OWNER, `fallocate -l 8192 ${f}`).code, 0);
  assert.equal(mode(f), 0o755);
  // Within the current size too (the file is 6 bytes), as a local filesystem's fallocate does.
  const fin = ownersFile('fin', 0o6775);
  assert.equal(runAs(OWNER, `fallocate -l 4 ${fin}`).code, 0);
  assert.equal(mode(fin), 0o775);
  assert.equal(readFileSync(fin, 'utf8'), 'hello\n');
  const c = ownersFile('c', 0o4755);
  const r = runAs(OWNER, `python3 -c "import os; os.close(os.open('${c}', os.O_CREAT | os.O_TRUNC | os.O_WRONLY))"`);
  assert.equal(r.code, 0, r.out);
  assert.equal(mode(c), 0o755);
  const root = ownersFile('root', 0o6755);
  sh(`echo more >> ${root}`);
  assert.equal(mode(root), 0o6755, 'CAP_FSETID keeps them');
  assert.equal(readFileSync(root, 'utf8'), 'hello\nmore\n');
});

test('setgid without group-exec stays for a writer in the file\'s group, goes for one outside it', { skip }, () => {
  const g = ownersFile('g', 0o2664);
  assert.equal(runAs(MEMBER, `echo more >> ${g}`).code, 0);
  assert.equal(mode(g), 0o2664);
  const o = ownersFile('g-other', 0o2666);
  assert.equal(runAs(OTHER, `echo more >> ${o}`).code, 0);
  assert.equal(mode(o), 0o666);
});

test('security.capability is asked for once per file, not before every write(2)', { skip }, async () => {
  const stats = join(m.root, 'stats');
  process.env.FUSE_STATS = stats;
  const v = await mountVolume(OPTS);
  delete process.env.FUSE_STATS;
  try {
    const r = sh(`python3 -c "
import os
fd = os.open('${join(v.upper, 'f')}', os.O_CREAT | os.O_WRONLY, 0o644)
for i in range(20): os.write(fd, b'x' * 4096)
os.close(fd)"`);
    assert.equal(r.code, 0, r.out);
    assert.equal(statSync(join(v.upper, 'f')).size, 20 * 4096);
  } finally {
    await v.cleanup();
  }
  const text = readFileSync(stats, 'utf8');
  rmSync(stats);
  const count = (op: string) => Number(new RegExp(`^${op}\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0);
  assert.equal(count('WRITE'), 20, text);
  assert.ok(count('GETXATTR') <= 2, `GETXATTR ${count('GETXATTR')} for 20 writes:\n${text}`);
});
