/**
 * ecryptfs-verify -u USER run by root reads USER's ~/.ecryptfs files: a user who links
 * Private.sig or Private.mnt to a root-only file must not get root to read it (the checks print
 * what they read: the sig file's bad token, the mount file's whole text). The checks run with the
 * user's uid; a clean setup still passes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fsp, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FIXTURES } from '../helpers/fixtures.js';
import { BIN } from './run.js';
import { freshUser, runAsOk, sh } from '../mount/harness.js';

const USER = 'etvfy1';
const SECRET = 'ROOTONLYSECRETLINE';
const skip = process.getuid?.() !== 0 ? 'needs root (a test user, a root-only file)' : false;

const verify = (args = ['-u', USER, '-p']) => {
  const r = spawnSync(process.execPath, ['--openssl-legacy-provider', join(BIN, 'ecryptfs-verify.js'), ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
};

test('ecryptfs-verify -u as root: Private.sig or Private.mnt linked to a root-only file is not read', { skip }, async () => {
  const { home, uid, gid } = freshUser(USER);
  const rootDir = `/tmp/etvfy1-${process.pid}`;
  const asUser = (cmd: string) => runAsOk(USER, cmd);
  try {
    // Root's file, readable by root alone; the directory lets anyone reach it (a 0600 file in /etc, say).
    await fsp.mkdir(rootDir, { mode: 0o711 });
    await fsp.chmod(rootDir, 0o711);
    await fsp.writeFile(join(rootDir, 'secret'), `${SECRET} more\n`, { mode: 0o600 });

    // The user's Private setup, as ecryptfs-setup-private lays it out.
    const m = JSON.parse(readFileSync(join(FIXTURES, 'corpus', 'setup-private', 'manifest.json'), 'utf8'));
    const dot = join(home, '.ecryptfs');
    asUser(`umask 077; mkdir ${dot} ${home}/.Private && mkdir -m 500 ${home}/Private && echo ${home}/Private > ${dot}/Private.mnt`);
    await fsp.writeFile(join(dot, 'Private.sig'), m.dot_ecryptfs['Private.sig'].text, { mode: 0o600 });
    await fsp.writeFile(join(dot, 'wrapped-passphrase'), Buffer.from(m.dot_ecryptfs['wrapped-passphrase'].hex, 'hex'), { mode: 0o600 });
    sh(`chown ${uid}:${gid} ${dot}/Private.sig ${dot}/wrapped-passphrase`);
    const ok = verify();
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /INFO: Configuration valid/);

    for (const f of ['Private.mnt', 'Private.sig']) {
      asUser(`mv ${dot}/${f} ${dot}/${f}.real && ln -s ${rootDir}/secret ${dot}/${f}`);
      // --home-dir before or after -u: the checks run with the user's uid all the same.
      for (const args of [['-u', USER, '-p'], ['--home-dir', home, '-u', USER, '-p'], ['-u', USER, '--home-dir', home, '-p']]) {
        const r = verify(args);
        assert.notEqual(r.code, 0, r.out);
        assert.ok(!r.out.includes(SECRET), `${f} linked to a root-only file: root read it (${args.join(' ')})\n${r.out}`);
        assert.match(r.out, new RegExp(`ERROR: \\[${dot}/${f}\\] cannot be read by \\[${USER}\\] \\(EACCES; owned by \\[root\\], mode 0600\\)`));
      }
      asUser(`rm ${dot}/${f} && mv ${dot}/${f}.real ${dot}/${f}`);
    }
    // Root's diagnostics, then the checks with the user's uid.
    assert.match(ok.out, new RegExp(`INFO: checking \\[${home}\\] as ${USER}`));
  } finally {
    sh(`pkill -9 -u ${USER}; userdel -r ${USER} 2>/dev/null`);
    await fsp.rm(rootDir, { recursive: true, force: true });
  }
});
