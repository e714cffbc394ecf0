/**
 * Mounting as an ordinary user through fusermount3 and fusermount-helper.py. As root the test
 * creates (if needed) the user "fusetest", makes /dev/fuse usable by ordinary users (Debian's
 * mode 0666; a fresh VM may have 0600) and runs the daemon and the file checks as that user.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, existsSync } from 'node:fs';
import { unprivilegedLaunch } from '../../src/fuse/mount.js';
import { DAEMON, mountedAt, run, startDaemon, tempMountpoint } from './harness.js';
import { openDevFuse } from '../mount/harness.js';

const USER = 'fusetest';

function skipReason(): string | undefined {
  if (process.platform !== 'linux') return 'FUSE mounts need Linux';
  if (!existsSync('/usr/bin/fusermount3') && !existsSync('/bin/fusermount3')) return 'fusermount3 is not installed (Debian package fuse3)';
  if (!existsSync('/dev/fuse')) return '/dev/fuse is missing';
  if ((process.getuid?.() ?? -1) !== 0) return 'needs root to create and switch to a test user';
  return undefined;
}

async function testUser(): Promise<{ uid: number; gid: number }> {
  let r = await run('id', ['-u', USER]);
  if (r.code !== 0) {
    const add = await run('useradd', ['-M', '-s', '/usr/sbin/nologin', USER]);
    assert.equal(add.code, 0, `useradd: ${add.stderr}`);
    r = await run('id', ['-u', USER]);
  }
  const g = await run('id', ['-g', USER]);
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

describe('FUSE mount as an ordinary user (fusermount3)', { skip: skipReason() }, () => {
  const env = { PATH: '/usr/local/bin:/usr/bin:/bin' };

  async function start() {
    openDevFuse();
    const user = await testUser();
    const mp = tempMountpoint();
    chownSync(mp, user.uid, user.gid);
    const params = { source: `memfs:${mp}`, mountpoint: mp, subtype: 'memfs' };
    const { cmd, args } = unprivilegedLaunch(params, [process.execPath, DAEMON, mp]);
    const d = await startDaemon(mp, cmd, args, env, { uid: user.uid, gid: user.gid, cwd: '/' });
    const asUser = (script: string) => run('sh', ['-c', script], { uid: user.uid, gid: user.gid, cwd: '/', env });
    return { user, mp, d, asUser };
  }

  it('mounts, serves the user and unmounts with fusermount3 -u', async () => {
    const { user, mp, d, asUser } = await start();
    try {
      const line = await mountedAt(mp);
      assert.ok(line, 'mounted');
      const [source, , type, options] = line.split(' ');
      assert.equal(source, `memfs:${mp}`);
      assert.equal(type, 'fuse.memfs');
      assert.match(options, new RegExp(`user_id=${user.uid}`));
      const r = await asUser(`cd '${mp}' && echo hello > f && mkdir d && ln -s f l && cat l && ls && stat -c %U f`);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `hello\nd\nf\nl\n${USER}\n`);
      const u = await asUser(`fusermount3 -u '${mp}'`);
      assert.equal(u.code, 0, u.stderr);
      const e = await d.exited;
      assert.equal(e.code, 0, d.stderr());
      assert.ok(e.sawClosed);
      assert.equal(await mountedAt(mp), undefined);
    } finally {
      await d.cleanup();
    }
  });

  it('a killed daemon leaves no dead mount (watchdog runs fusermount3 -uz)', async () => {
    const { mp, d } = await start();
    try {
      d.child.kill('SIGKILL');
      await d.exited;
      let line = await mountedAt(mp);
      for (let i = 0; i < 50 && line; i++) {
        await new Promise((r) => setTimeout(r, 100));
        line = await mountedAt(mp);
      }
      assert.equal(line, undefined, 'the watchdog unmounted it');
    } finally {
      await d.cleanup();
    }
  });
});
