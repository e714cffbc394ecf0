/**
 * Every installed command answers --help (and -h where it has no -h of its own): usage on stdout,
 * exit 0, and nothing done: the home, /dev/shm (session counters), the user keyring and the
 * mounts are the same before and after. Run as root with a temporary HOME, and as an ordinary
 * user (etcli13help) whose home holds a Private setup and whose keyring holds a key, so a tool
 * that acted (unmount, unlink keys, bump the counter) would show.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/fixtures.js';
import { freshUser, sh } from '../mount/harness.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BINS = Object.entries(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).bin as Record<string, string>);
/** Tools whose -h means something else (ecryptfs-verify: --home). */
const OWN_SHORT_H = new Set(['ecryptfs-verify']);
const USER = 'etcli13help';
const isRoot = process.getuid?.() === 0;

function snapshotTree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      const st = lstatSync(p);
      out.push(`${p} ${st.mode.toString(8)} ${st.uid} ${st.size} ${st.mtimeMs}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

/** What a tool must not change: files under HOME, /dev/shm entries of the user, mounts under HOME, the user's keys. */
function snapshot(home: string, user: string, keyring: () => string): string {
  const shm = readdirSync('/dev/shm').filter((n) => n.includes(user)).sort();
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes(home));
  return JSON.stringify({ home: snapshotTree(home), shm, mounts, keys: keyring() });
}

function runAll(run: (bin: string, flag: string) => { code: number; stdout: string; stderr: string }, snap: () => string): void {
  const before = snap();
  for (const [name, bin] of BINS) {
    for (const flag of OWN_SHORT_H.has(name) ? ['--help'] : ['--help', '-h']) {
      const r = run(join(ROOT, bin), flag);
      assert.equal(r.code, 0, `${name} ${flag} exits 0 (stderr: ${r.stderr})`);
      assert.match(r.stdout, /usage/i, `${name} ${flag} prints its usage`);
      assert.ok(r.stdout.includes(name), `${name} ${flag}: the usage names the tool`);
      assert.equal(snap(), before, `${name} ${flag} changed nothing`);
    }
  }
  // Subcommands of `ecryptfs` that act answer --help without acting too.
  for (const sub of ['mount', 'umount', 'decrypt', 'encrypt']) {
    const r = run(join(ROOT, 'bin/ecryptfs.js'), `${sub} --help`);
    assert.equal(r.code, 0, `ecryptfs ${sub} --help`);
    assert.match(r.stdout, new RegExp(`Usage: ecryptfs ${sub}`));
  }
  assert.equal(snap(), before);
}

test('every bin answers --help and -h with its usage, exit 0, and changes nothing (as root)', () => {
  const t = tempDir('ecryptfs-help-');
  try {
    const home = join(t.path, 'home');
    mkdirSync(join(home, '.ecryptfs'), { recursive: true });
    writeFileSync(join(home, '.ecryptfs', 'Private.sig'), '0123456789abcdef\n');
    const user = isRoot ? 'root' : (process.env.USER ?? 'nobody');
    const run = (bin: string, flag: string) => {
      const r = spawnSync(process.execPath, ['--openssl-legacy-provider', bin, ...flag.split(' ')], {
        encoding: 'utf8', env: { ...process.env, HOME: home, USER: user, LOGNAME: user }, cwd: home, stdio: ['ignore', 'pipe', 'pipe'],
      });
      return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    };
    // root's keyring is shared with other tests running as root: only the ordinary user's is compared.
    runAll(run, () => snapshot(home, user, () => ''));
  } finally {
    t.cleanup();
  }
});

test('every bin answers --help and -h as an ordinary user, and changes nothing', { skip: isRoot ? (sh('command -v keyctl setpriv').code !== 0 ? 'needs keyctl and setpriv' : false) : 'creating a user needs root (CI runs as root)' }, () => {
  const { home, uid, gid } = freshUser(USER);
  try {
    const as = (cmd: string) => spawnSync('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--init-groups', 'sh', '-c', cmd], {
      encoding: 'utf8', env: { PATH: process.env.PATH, HOME: home, USER, LOGNAME: USER }, cwd: home,
    });
    assert.equal(as(`mkdir -p ~/.ecryptfs ~/.Private ~/Private && printf '0123456789abcdef\\n' > ~/.ecryptfs/Private.sig && printf x | keyctl padd user 0123456789abcdef @u >/dev/null`).status, 0);
    const keys = () => as('keyctl list @u').stdout;
    assert.match(keys(), /0123456789abcdef/);
    const run = (bin: string, flag: string) => {
      const r = as(`${process.execPath} --openssl-legacy-provider ${bin} ${flag} </dev/null`);
      return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
    };
    runAll(run, () => snapshot(home, USER, keys));
  } finally {
    sh(`setpriv --reuid=${uid} --regid=${gid} --clear-groups keyctl clear @u; rm -f /dev/shm/ecryptfs-${USER}-*; pkill -9 -u ${USER}; userdel -r ${USER} 2>/dev/null`);
  }
});
