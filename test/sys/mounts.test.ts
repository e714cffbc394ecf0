/** The mount table reader (src/sys/mounts.ts): the kernel's octal escapes, the mount on top, this process's real table. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { statSync } from 'node:fs';
import { isMountPoint, mountAt, mountDevAt, mountsOfType, parseMounts, readMounts } from '../../src/sys/mounts.js';

const runs = (n: number) => Number(process.env.FUZZ_RUNS ?? n);
/** As the kernel's seq_file mangle writes a field: space, tab, newline and backslash as \ooo. */
const mangle = (s: string) => s.replace(/[ \t\n\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);

test('fields come back as they were before the kernel escaped them', () => {
  fc.assert(
    fc.property(fc.string({ minLength: 1 }), fc.string({ minLength: 1 }), (source, target) => {
      const [e] = parseMounts(`${mangle(source)} ${mangle(target)} fuse.ecryptfs rw,nosuid 0 0\n`);
      assert.deepEqual(e, { source, target, fstype: 'fuse.ecryptfs', options: 'rw,nosuid' });
    }),
    { numRuns: runs(300) },
  );
});

test('the last mount on a path is the one on top; types select; short lines are skipped', () => {
  const t = parseMounts('a /m\\040n ext4 rw 0 0\n\nb /m\\040n fuse.ecryptfs rw 0 0\nc /x ecryptfs rw 0 0\n');
  assert.equal(t.length, 3);
  assert.equal(mountAt(t, '/m n')?.source, 'b');
  assert.equal(mountAt(t, '/m\\040n'), undefined);
  assert.deepEqual(mountsOfType(t, ['ecryptfs', 'fuse.ecryptfs']).map((e) => e.source), ['b', 'c']);
});

test('this process\'s table: / is a mount point, /proc/self/fd is not', async () => {
  assert.ok((await readMounts()).length > 0);
  assert.equal(await isMountPoint('/'), true);
  assert.equal(await isMountPoint('/proc/self/fd'), false);
});

test('mountDevAt gives the device of the mount on top at a path as written, from mountinfo', () => {
  const info = [
    '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
    '40 22 0:45 / /home/u/Private rw,nosuid,nodev shared:20 - fuse.ecryptfs /home/u/.Private rw,user_id=0,group_id=0',
    '41 22 0:46 / /mnt/with\\040space rw - tmpfs tmpfs rw',
    '42 40 0:47 / /home/u/Private rw,nosuid,nodev - fuse.ecryptfs /home/u/.Private rw,user_id=0,group_id=0',
  ].join('\n');
  assert.equal(mountDevAt('/home/u/Private', info), '0:47', 'the last mount at the path is the one on top');
  assert.equal(mountDevAt('/mnt/with space', info), '0:46');
  assert.equal(mountDevAt('/home/u', info), undefined);
  // The live table agrees with stat(2) for a mount that exists here.
  const st = statSync('/proc');
  assert.equal(mountDevAt('/proc'), `${Math.floor(st.dev / 256) & 0xfff}:${(st.dev & 0xff) | ((st.dev >> 12) & 0xfff00)}`);
});
