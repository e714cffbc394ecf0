/** The pure /etc/fstab and /etc/crypttab edits behind ecryptfs-setup-swap. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { appendLine, commentOut, crypttabLine, hasCrypttabEntry, nextCryptswap, resumeNames, splitPartition } from '../../src/setup/fstab.js';

test('commentOut comments exactly the lines whose first field is a target, as the script\'s sed', () => {
  const fstab = 'UUID=aa / ext4 defaults 0 1\nUUID=bb none swap sw 0 0\n/dev/sda2\tnone swap sw 0 0\n# /dev/sda2 old\nUUID=bbb none swap sw 0 0\n';
  const c = commentOut(fstab, ['UUID=bb', '/dev/sda2', '/dev/mapper/none']);
  assert.equal(c.text, 'UUID=aa / ext4 defaults 0 1\n#UUID=bb none swap sw 0 0\n#/dev/sda2 none swap sw 0 0\n# /dev/sda2 old\nUUID=bbb none swap sw 0 0\n');
  assert.deepEqual(c.commented, ['UUID=bb', '/dev/sda2']);
  // Regex characters in a target are literal.
  assert.equal(commentOut('/dev/mapper/vg-swap_1 none swap sw 0 0\n/dev/mapperXvg-swap_1 none swap\n', ['/dev/mapper/vg-swap_1']).text, '#/dev/mapper/vg-swap_1 none swap sw 0 0\n/dev/mapperXvg-swap_1 none swap\n');
});

test('commentOut never changes a line that does not start with a target (property)', () => {
  fc.assert(
    fc.property(fc.array(fc.stringMatching(/^[A-Za-z0-9=/_ .-]{0,30}$/), { maxLength: 8 }), fc.stringMatching(/^\/dev\/[a-z0-9]{1,6}$/), (lines, target) => {
      const text = lines.join('\n');
      const out = commentOut(text, [target]).text.split('\n');
      lines.forEach((l, i) => {
        if (l.startsWith(`${target} `)) assert.equal(out[i], `#${l}`);
        else assert.equal(out[i], l);
      });
    }),
  );
});

test('crypttab lines, entry detection and free cryptswap names', () => {
  assert.equal(crypttabLine('cryptswap1', 'u-1', '/dev/sda2'), 'cryptswap1 UUID=u-1 /dev/urandom swap,offset=1024,cipher=aes-xts-plain64');
  assert.equal(crypttabLine('cryptswap2', undefined, '/dev/sda3'), 'cryptswap2 /dev/sda3 /dev/urandom swap,offset=1024,cipher=aes-xts-plain64');
  const ct = '# cryptswap9 UUID=zz /dev/urandom swap\ncryptswap1 UUID=u-1 /dev/urandom swap,offset=1024,cipher=aes-xts-plain64\nsda5_crypt /dev/sda5 /dev/urandom swap,cipher=aes-xts-plain64\n';
  assert.ok(hasCrypttabEntry(ct, '/dev/sdb1', 'u-1'), 'by UUID');
  assert.ok(hasCrypttabEntry(ct, '/dev/sda5', undefined), 'by the script\'s ^BASE.*swap.*cipher');
  assert.ok(!hasCrypttabEntry(ct, '/dev/sda6', 'u-2'));
  assert.ok(!hasCrypttabEntry(ct, '/dev/sdc1', 'zz'), 'commented lines do not count');
  assert.equal(nextCryptswap(ct, 0, () => false), 2);
  assert.equal(nextCryptswap(ct, 0, (n) => n === 'cryptswap2'), 3);
  assert.equal(appendLine('a', 'b'), 'a\nb\n');
  assert.equal(appendLine('', 'b'), 'b\n');
});

test('partition splitting (NVMe/MMC too) and resume settings', () => {
  assert.deepEqual(splitPartition('/dev/sda2'), { drive: '/dev/sda', partno: 2 });
  assert.deepEqual(splitPartition('/dev/nvme0n1p3'), { drive: '/dev/nvme0n1', partno: 3 });
  assert.deepEqual(splitPartition('/dev/mmcblk0p12'), { drive: '/dev/mmcblk0', partno: 12 });
  assert.equal(splitPartition('/dev/mapper/vg-swap'), undefined);
  assert.ok(resumeNames('RESUME=UUID=u-1\n', '/dev/sda2', 'u-1'));
  assert.ok(resumeNames('BOOT_IMAGE=/vmlinuz root=/dev/sda1 resume=/dev/sda2 quiet', '/dev/sda2', undefined));
  assert.ok(!resumeNames('RESUME=none\n', '/dev/sda2', 'u-1'));
});
