/**
 * Every set-up failure a new user can hit says what is wrong and the command that fixes it.
 * Each situation is simulated without changing the machine for anyone else: a private mount
 * namespace (`unshare -m`) hides or replaces /dev/fuse, a PATH without the tool hides fuse3,
 * python3 or keyutils, a seccomp filter takes the kernel keyring away (as Docker's profile does).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/fixtures.js';
import { BIN, DIST_SRC, runCmd, type RunResult } from './run.js';
import { freshUser, isMounted, sh } from '../mount/harness.js';

const USER = 'etfresh1';
const MAIN = `${DIST_SRC}cli/main.js`;
const HELPER = fileURLToPath(new URL('../../../src/fuse/fusermount-helper.py', import.meta.url));
const NO_KEYRING = fileURLToPath(new URL('../../../test/helpers/no-keyring.py', import.meta.url));
// The system's PATH as a login shell has it (not the test runner's, which may hold root-only shims).
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const which = (tool: string) => sh(`PATH=${SYSTEM_PATH} command -v ${tool}`).out.trim();
const OPTS = 'ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n,no_sig_cache';

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root to create a test user and private mount namespaces';
  for (const tool of ['unshare', 'setpriv', 'fusermount3', 'keyctl', 'python3']) {
    if (!which(tool)) return `${tool} is missing (apt-get install util-linux fuse3 keyutils python3)`;
  }
  return false;
}

/**
 * Run `argv` as `user` (or root), after `setup` (shell commands run as root in a private mount
 * namespace, when given), with `path` as PATH.
 */
function run(argv: string[], o: { user?: { uid: number; gid: number; home: string }; setup?: string; path?: string } = {}): Promise<RunResult> {
  const path = o.path ?? SYSTEM_PATH;
  const env: NodeJS.ProcessEnv = { PATH: path, HOME: o.user?.home ?? '/root', LANG: 'C' };
  const drop = o.user ? [which('setpriv'), `--reuid=${o.user.uid}`, `--regid=${o.user.gid}`, '--clear-groups'] : [];
  let cmd: string[] = [...drop, ...argv];
  if (o.setup !== undefined) {
    // The namespace's shell finds its tools in the normal PATH; the command gets `path`.
    cmd = [which('unshare'), '-m', '--propagation', 'private', '/bin/sh', '-ec', `${o.setup}\nexport PATH="$0"\nexec "$@"`, path, ...cmd];
    env.PATH = SYSTEM_PATH;
  }
  return runCmd(cmd[0], cmd.slice(1), undefined, { env, onlyEnv: true, cwd: '/' });
}

const node = (file: string, ...args: string[]) => [process.execPath, '--openssl-legacy-provider', file, ...args];

describe('set-up errors name the cause and the fix', { skip: skipReason() }, () => {
  let t: { path: string; cleanup(): void };
  let user: { uid: number; gid: number; home: string };
  let lower: string;
  let upper: string;
  let pw: string;
  let bin: string;
  const mountArgs = () => node(MAIN, 'mount', lower, upper, '-o', `key=passphrase:passphrase_passwd_file=${pw},${OPTS}`);
  // A /dev/fuse of the given mode, bind-mounted over the real one inside the namespace only.
  const devFuse = (mode: string) => `mknod -m ${mode} ${t.path}/fuse-${mode} c 10 229 2>/dev/null || true\nmount --bind ${t.path}/fuse-${mode} /dev/fuse`;
  // A PATH holding only the given tools (so that the others are "not installed").
  const pathWith = (name: string, tools: string[]) => {
    const dir = join(bin, name);
    mkdirSync(dir, { recursive: true });
    for (const tool of tools) symlinkSync(which(tool), join(dir, tool));
    return dir;
  };

  before(() => {
    user = freshUser(USER);
    t = tempDir('ecryptfs-setuperr-');
    chmodSync(t.path, 0o755);
    lower = join(t.path, 'lower');
    upper = join(t.path, 'upper');
    bin = join(t.path, 'bin');
    for (const d of [lower, upper]) {
      mkdirSync(d);
      chownSync(d, user.uid, user.uid);
    }
    pw = join(t.path, 'pw');
    writeFileSync(pw, 'passphrase_passwd=setup-errors-pass\n', { mode: 0o600 });
    chownSync(pw, user.uid, user.uid);
  });

  after(() => {
    if (isMounted(upper)) sh(`umount -l ${upper}`);
    t?.cleanup();
    sh(`pkill -9 -u ${USER}; userdel -r ${USER}`);
  });

  it('no /dev/fuse: says the fuse module or the container device is missing, and how to add it', async () => {
    const hide = 'mount -t tmpfs -o mode=755 none /dev\nmknod -m 666 /dev/null c 1 3\nmknod -m 666 /dev/zero c 1 5\nmknod -m 666 /dev/urandom c 1 9';
    for (const who of [undefined, user]) {
      const r = await run(mountArgs(), { user: who, setup: hide });
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^ecryptfs: \/dev\/fuse does not exist, and FUSE mounts need it: the kernel's fuse module is not loaded/m);
      assert.match(r.stderr, /Fix: as root run `modprobe fuse` \(in a container: start it with `--device \/dev\/fuse`\)/);
    }
  });

  it('/dev/fuse mode 0600 for an ordinary user: says it is not usable by this user and the chmod root runs', async () => {
    const r = await run(mountArgs(), { user, setup: devFuse('600') });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`/dev/fuse is not usable by user ${USER} \\(mode 0600, owner uid 0\\)`));
    assert.match(r.stderr, /Fix: as root run `chmod 0666 \/dev\/fuse`/);
    assert.ok(!r.stderr.includes('did not pass'), r.stderr);
    assert.ok(!isMounted(upper));
    // The helper alone (a library user's launch), where fusermount3 itself meets the device.
    const h = await run([which('python3'), HELPER, upper, 'subtype=x', '--', 'true'], { user, setup: devFuse('600') });
    assert.notEqual(h.code, 0);
    assert.match(h.stderr, /fusermount3: failed to open \/dev\/fuse: Permission denied/);
    assert.match(h.stderr, new RegExp(`fusermount3 could not mount ${upper} .*as root: \`chmod 0666 /dev/fuse\``));
  });

  it('no fusermount3 (fuse3 not installed): says `apt-get install fuse3`', async () => {
    const path = pathWith('no-fuse3', ['python3']);
    const r = await run(mountArgs(), { user, path });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /fusermount3 is not installed \(or not in PATH\): ordinary users mount FUSE filesystems through it\. Fix: as root run `apt-get install fuse3`/);
    const h = await run([which('python3'), HELPER, upper, 'subtype=x', '--', 'true'], { user, path });
    assert.equal(h.code, 127);
    assert.match(h.stderr, /fusermount3 is not installed .* Fix: as root run `apt-get install fuse3`/);
  });

  it('no python3 (needed for mounts by ordinary users): says `apt-get install python3`', async () => {
    const r = await run(mountArgs(), { user, path: pathWith('no-python3', ['fusermount3']) });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /python3 is not installed \(or not in PATH\): mounts by ordinary users need it .* Fix: as root run `apt-get install python3`/);
  });

  it("a mount point the user does not own: says so and how to get one", async () => {
    const foreign = join(t.path, 'roots');
    mkdirSync(foreign, { mode: 0o755 });
    const r = await run(node(MAIN, 'mount', lower, foreign, '-o', `key=passphrase:passphrase_passwd_file=${pw},${OPTS}`), { user, setup: devFuse('666') });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`the mount point ${foreign} is not writable by user ${USER} \\(mode 0755, owner uid 0\\)`));
    assert.match(r.stderr, new RegExp(`Fix: mount on a directory you own \\(\`mkdir ~/mnt\`\\), or as root run \`chown ${USER} ${foreign}\``));
  });

  it('a busy mount point (already mounted): says so and how to unmount it', async () => {
    const first = await run(node(MAIN, 'mount', lower, upper, '-o', `key=passphrase:passphrase_passwd_file=${pw},${OPTS}`));
    assert.equal(first.code, 0, first.stderr);
    try {
      const r = await run(mountArgs());
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`${upper} is busy: a fuse.ecryptfs filesystem is already mounted there\\. Fix: unmount it first \\(\`umount ${upper}\`; if its daemon died: \`umount -l ${upper}\`\\)`));
    } finally {
      sh(`umount ${upper} || umount -l ${upper}`);
    }
  });

  it('not root where root is needed: the root-only tools say they must run as root', async () => {
    const m = await run(node(join(BIN, 'ecryptfs-migrate-home.js'), '-u', USER), { user });
    assert.notEqual(m.code, 0);
    assert.match(m.stdout + m.stderr, /must be executed with root privileges/);
    const r = await run(node(join(BIN, 'ecryptfs-recover-private.js')), { user });
    assert.notEqual(r.code, 0);
    assert.match(r.stdout + r.stderr, /must be run as root/);
    const b = await run(node(join(BIN, 'ecryptfs-setup-private.js'), '-b', '-u', USER), { user });
    assert.notEqual(b.code, 0);
    assert.match(b.stdout + b.stderr, /must be root/);
  });

  it('kernel keyring unavailable (seccomp, as in containers): says why and what to do; keyutils\' keyctl is not needed', async () => {
    const withPass = (argv: string[], path?: string) =>
      run(['/bin/sh', '-c', 'printf %s add-pass-test | "$@"', 'sh', ...argv], { user, path });
    const r = await withPass([which('python3'), NO_KEYRING, ...node(join(BIN, 'ecryptfs-add-passphrase.js'), '-')]);
    assert.match(r.stderr, /the kernel keyring is not available to this process \(keyctl: .*Operation not permitted\)/);
    assert.match(r.stderr, /seccomp profile refuses add_key and keyctl\): run the container with a profile that allows them, or give the passphrase to the command instead/);
    const mgr = await run([which('python3'), NO_KEYRING, ...node(join(BIN, 'ecryptfs-manager.js'))], { user });
    assert.equal(mgr.code, 1);
    assert.match(mgr.stderr, /the kernel keyring is not available to this process/);
    const sigMount = await run([which('python3'), NO_KEYRING, ...node(MAIN, 'mount', lower, upper, '-o', `ecryptfs_sig=0123456789abcdef,${OPTS}`)]);
    assert.equal(sigMount.code, 1);
    assert.match(sigMount.stderr, /the key with sig 0123456789abcdef cannot be read: the kernel keyring is not available to this process .* give the passphrase to the command instead of the keyring \(e\.g\. `ecryptfs mount LOWER UPPER -o key=passphrase:passphrase_passwd_file=FILE`\)/);
    // keyutils' keyctl is not needed: the keyring is reached through add_key(2)/keyctl(2) themselves.
    const noKeyctl = await withPass(node(join(BIN, 'ecryptfs-add-passphrase.js'), '-'), pathWith('no-keyctl', ['python3']));
    assert.equal(noKeyctl.code, 0, noKeyctl.stderr);
    assert.match(noKeyctl.stdout, /^Inserted auth tok with sig \[[0-9a-f]{16}\] into the user session keyring$/m);
  });
});
