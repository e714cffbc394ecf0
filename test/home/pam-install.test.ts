/**
 * The documented install command, src/pam/pam-install.sh, on Debian's default common-* files: it
 * builds pam_ecryptfs_ts.so, writes /usr/share/pam-configs/ecryptfs-ts and runs pam-auth-update,
 * after which a login through the common-* files (as /etc/pam.d/login includes them) mounts
 * ~/Private; `--remove` gives back the files byte for byte. Also with ecryptfs-utils' pam_ecryptfs
 * profile enabled before: ours replaces it, and --remove brings it back.
 *
 * All of it runs in a private mount namespace (unshare -m) over copies of /etc/pam.d,
 * /usr/share/pam-configs, /var/lib/pam, debconf's database and the PAM module directory, so the
 * machine's own login configuration is never touched.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chownSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/fixtures.js';
import { freshUser, mountSkipReason, openDevFuse, runAs, sh } from '../mount/harness.js';
import { pamSkipReason, ROOT } from './pam-harness.js';

const skip =
  mountSkipReason() ||
  pamSkipReason() ||
  (sh('command -v pam-auth-update && command -v unshare').code !== 0 ? 'needs pam-auth-update (libpam-runtime) and unshare (util-linux)' : false) ||
  (sh('unshare -m true').code !== 0 ? 'cannot make a mount namespace here (unshare -m)' : false);

const FILES = ['common-auth', 'common-account', 'common-session', 'common-session-noninteractive', 'common-password'];

/** The scenario, as root in a private mount namespace; results land in OUT. */
const SCRIPT = String.raw`
set -eu
OUT=$1; ROOT=$2; USER=$3; HOME_DIR=$4; WITH_ECRYPTFS_UTILS=$5
export DEBIAN_FRONTEND=noninteractive
mount --make-rprivate /
SECDIR=$(dirname "$(find /lib /usr/lib /lib64 -name pam_unix.so -path '*/security/*' 2>/dev/null | head -n 1)")
mkdir -p /var/lib/ecryptfs-ts
i=0
for d in /etc/pam.d /usr/share/pam-configs /var/lib/pam /var/cache/debconf "$SECDIR" /var/lib/ecryptfs-ts; do
  i=$((i+1)); mkdir -p "$OUT/ns/$i"; cp -a "$d/." "$OUT/ns/$i/"; mount --bind "$OUT/ns/$i" "$d"
done
# Debian's defaults: the profiles of the installed PAM modules, generated as on a fresh install.
rm -f /usr/share/pam-configs/ecryptfs-ts /etc/pam.d/common-* /var/lib/pam/* /var/lib/ecryptfs-ts/*
[ "$WITH_ECRYPTFS_UTILS" = yes ] || rm -f /usr/share/pam-configs/ecryptfs-utils
pam-auth-update --package --force
mkdir -p "$OUT/before" "$OUT/installed" "$OUT/removed"
for f in ${FILES.join(' ')}; do cp /etc/pam.d/$f "$OUT/before/"; done
printf '@include common-auth\n@include common-account\n@include common-session\n@include common-password\n' > /etc/pam.d/etpam-inst
sh "$ROOT/src/pam/pam-install.sh" > "$OUT/install.log" 2>&1 || { echo "install failed: $?" >> "$OUT/install.log"; }
for f in ${FILES.join(' ')}; do cp /etc/pam.d/$f "$OUT/installed/"; done
ls "$SECDIR" > "$OUT/modules-installed"
printf 'inst-login-pw\n' | pamtester etpam-inst "$USER" authenticate open_session > "$OUT/login.log" 2>&1 || echo "pamtester: $?" >> "$OUT/login.log"
grep " $HOME_DIR/Private fuse.ecryptfs " /proc/mounts > "$OUT/mounted" || true
pamtester etpam-inst "$USER" close_session > "$OUT/logout.log" 2>&1 || true
grep " $HOME_DIR/Private fuse.ecryptfs " /proc/mounts > "$OUT/mounted-after-logout" || true
printf 'inst-login-pw\nnew-inst-pw\nnew-inst-pw\n' | setpriv --ruid="$(id -u "$USER")" pamtester etpam-inst "$USER" chauthtok > "$OUT/passwd.log" 2>&1 || echo "pamtester: $?" >> "$OUT/passwd.log"
sh "$ROOT/src/pam/pam-install.sh" --remove > "$OUT/remove.log" 2>&1 || echo "remove failed: $?" >> "$OUT/remove.log"
for f in ${FILES.join(' ')}; do cp /etc/pam.d/$f "$OUT/removed/"; done
ls "$SECDIR" > "$OUT/modules-removed"
ls /usr/share/pam-configs > "$OUT/profiles-removed"
`;

function scenario(withEcryptfsUtils: boolean) {
  openDevFuse();
  const USER = withEcryptfsUtils ? 'etpam-inst2' : 'etpam-inst1';
  const { home, uid, gid } = freshUser(USER, 'inst-login-pw');
  const t = tempDir('etpam-install-');
  try {
    for (const [f, v] of [['lp', 'inst-login-pw'], ['mp', 'inst-mount-pass-0123456789abcd']]) {
      writeFileSync(join(home, f), `${v}\n`, { mode: 0o600 });
      chownSync(join(home, f), uid, gid);
    }
    const setup = runAs(USER, `${process.execPath} --openssl-legacy-provider ${join(ROOT, 'bin/ecryptfs-setup-private.js')} --loginpass-file ${home}/lp --mountpass-file ${home}/mp`);
    assert.equal(setup.code, 0, setup.out);
    sh(`rm -f ${home}/lp ${home}/mp; rm -f /dev/shm/ecryptfs-${USER}-Private`);
    mkdirSync(join(t.path, 'out'));
    writeFileSync(join(t.path, 'run.sh'), SCRIPT);
    const env = { ...process.env, PATH: `${join(process.execPath, '..')}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin` };
    const r = spawnSync('unshare', ['-m', 'sh', join(t.path, 'run.sh'), join(t.path, 'out'), ROOT.replace(/\/$/, ''), USER, home, withEcryptfsUtils ? 'yes' : 'no'], { encoding: 'utf8', env, timeout: 120_000 });
    const out = (f: string) => readFileSync(join(t.path, 'out', f), 'utf8');
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    const log = `install:\n${out('install.log')}\nlogin:\n${out('login.log')}\nremove:\n${out('remove.log')}`;
    const lines = (dir: string, f: string) => out(`${dir}/${f}`).split('\n').filter((l) => l.trim() && !l.startsWith('#'));

    // Installed: one line in each of auth, session, session-noninteractive and password, after
    // the primary block (pam_unix's jump lands on pam_permit's, not on ours), nothing in account.
    assert.match(out('install.log'), /ecryptfs-ts is in PAM/, log);
    assert.ok(out('modules-installed').split('\n').includes('pam_ecryptfs_ts.so'));
    for (const f of ['common-auth', 'common-session', 'common-session-noninteractive', 'common-password']) {
      const l = lines('installed', f);
      const ours = l.filter((x) => x.includes('pam_ecryptfs_ts.so'));
      assert.equal(ours.length, 1, `${f}:\n${l.join('\n')}`);
      assert.match(ours[0], /^\w+\s+optional\s+pam_ecryptfs_ts\.so hook=\S+ node=\S+ bin=\S+$/);
      assert.ok(l.indexOf(ours[0]) > l.findIndex((x) => /\bpam_permit\.so/.test(x)), `${f}: after the primary block`);
      assert.ok(!l.some((x) => /\bpam_ecryptfs\.so/.test(x)), `${f}: ecryptfs-utils' module is out while ours is in`);
      // The lines pam-auth-update had before are all still there (jump counts included).
      const before = lines('before', f).filter((x) => !/\bpam_ecryptfs\.so/.test(x));
      assert.deepEqual(l.filter((x) => x !== ours[0]), before, `${f}: the rest unchanged`);
    }
    assert.deepEqual(lines('installed', 'common-account'), lines('before', 'common-account'));
    // A login through the common-* files mounts; the logout unmounts.
    assert.match(out('login.log'), /successfully opened a session/, log);
    assert.notEqual(out('mounted'), '', `mounted at login\n${log}`);
    assert.equal(out('mounted-after-logout'), '', 'unmounted at logout');
    // A password change through common-password re-wraps (the new password unwraps).
    assert.match(out('passwd.log'), /authentication token altered successfully/, out('passwd.log'));
    const unwrap = spawnSync('sh', ['-c', `${process.execPath} --openssl-legacy-provider ${join(ROOT, 'bin/ecryptfs-unwrap-passphrase.js')} ${home}/.ecryptfs/wrapped-passphrase -`], { input: 'new-inst-pw\n', encoding: 'utf8' });
    assert.equal(unwrap.stdout.trim(), 'inst-mount-pass-0123456789abcd', unwrap.stderr);

    // Removed: the files are what they were, byte for byte; the module and profile are gone.
    for (const f of FILES) assert.equal(out(`removed/${f}`), out(`before/${f}`), `${f} after --remove\n${out('remove.log')}`);
    assert.ok(!out('modules-removed').split('\n').includes('pam_ecryptfs_ts.so'));
    assert.ok(!out('profiles-removed').split('\n').includes('ecryptfs-ts'));
    if (withEcryptfsUtils) assert.ok(lines('removed', 'common-auth').some((x) => /\bpam_ecryptfs\.so/.test(x)), 'pam_ecryptfs is back');
    // The machine's own files were never touched.
    assert.ok(!readFileSync('/etc/pam.d/common-session', 'utf8').includes('pam_ecryptfs_ts.so'));
    assert.ok(!readdirSync('/usr/share/pam-configs').includes('ecryptfs-ts'));
  } finally {
    sh(`fusermount3 -uz ${home}/Private 2>/dev/null; umount -l ${home}/Private 2>/dev/null; rm -rf /dev/shm/ecryptfs-${USER}-Private*; pkill -9 -u ${USER}; userdel -r ${USER} 2>/dev/null`);
    t.cleanup();
    sh('rmdir /var/lib/ecryptfs-ts 2>/dev/null');
  }
}

test('pam-install.sh on Debian\'s default common-* files: a login mounts, --remove restores them byte for byte', { skip, timeout: 180_000 }, () => scenario(false));

test('pam-install.sh where ecryptfs-utils\' pam_ecryptfs profile was enabled: ours replaces it, --remove brings it back', { skip: skip || (readdirSync('/usr/share/pam-configs').includes('ecryptfs-utils') ? false : 'ecryptfs-utils is not installed (its PAM profile)'), timeout: 180_000 }, () => scenario(true));
