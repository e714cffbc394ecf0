/**
 * ecryptfs_check_dev_ruid against a user who swaps the lower directory after the launcher has
 * looked at it: root mounts a directory of its own inside a directory the user owns, and while
 * the launcher waits for its passphrase (passphrase_passwd_fd, after the option checks) the user
 * renames it away and puts a directory of the user's own in its place. The mount must be refused
 * on what the daemon opened, not mounted on the user's directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { deriveKey, DEFAULT_SALT } from '../../src/format/kdf.js';
import { tempDir } from '../helpers/fixtures.js';
import { freshUser, isMounted, mountSkipReason, runAs, sh } from './harness.js';

const USER = 'etruid1';
const PASS = 'etruid1-swap-pass';
const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const OPTS = 'ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n,no_sig_cache';
const skip = mountSkipReason() || (sh('keyctl show @u').code !== 0 ? 'no kernel keyring (keyctl)' : false);

/** Whether process `pid` is blocked in read(2) on descriptor `fd` (/proc/PID/syscall: "0 0xFD ..."). */
function readingFd(pid: number, fd: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/syscall`, 'utf8').startsWith(`0 0x${fd.toString(16)} `);
  } catch {
    return false;
  }
}

test('ecryptfs_check_dev_ruid: a lower directory swapped for the user\'s own after the launcher\'s check is refused by the daemon', { skip }, async () => {
  const { uid, gid } = freshUser(USER);
  const t = tempDir('etruid1-');
  const dir = join(t.path, 'd');
  const lower = join(dir, 'lower');
  const upper = join(t.path, 'upper');
  try {
    chmodSync(t.path, 0o755);
    mkdirSync(dir, { mode: 0o755 });
    chownSync(dir, uid, gid);
    mkdirSync(lower, { mode: 0o755 }); // root's: the check at launch passes
    mkdirSync(upper);
    const child = spawn(process.execPath, ['--openssl-legacy-provider', CLI, 'mount', lower, upper, '-o', `key=passphrase:passphrase_passwd_fd=3,ecryptfs_check_dev_ruid,${OPTS}`], {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    // The options are checked before the passphrase is read: once the launcher blocks on fd 3,
    // its look at the lower directory is behind it.
    for (let i = 0; i < 600 && !readingFd(child.pid!, 3); i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(readingFd(child.pid!, 3), `the launcher never waited for its passphrase: ${out}`);
    const swap = runAs(USER, `mv ${lower} ${dir}/lower.root && mkdir ${lower}`);
    assert.equal(swap.code, 0, swap.out);
    const pw = child.stdio[3] as NodeJS.WritableStream;
    pw.end(`passphrase_passwd=${PASS}\n`);
    const code = await exited;
    assert.notEqual(code, 0, `mounted the user's directory: ${out}`);
    assert.match(out, new RegExp(`Mount of device \\(uid: ${uid}\\) not owned by requested user \\(uid: 0\\)`));
    assert.ok(!isMounted(upper), 'nothing mounted');
  } finally {
    sh(`umount -l ${upper} 2>/dev/null; pkill -9 -u ${USER}; userdel -r ${USER} 2>/dev/null`);
    const sig = deriveKey(PASS, DEFAULT_SALT).sig;
    sh(`id=$(keyctl search @u user ${sig} 2>/dev/null) && keyctl unlink $id @u`);
    t.cleanup();
  }
});
