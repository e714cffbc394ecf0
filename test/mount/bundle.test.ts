/**
 * The programs of a mount bundled (scripts/bundle.mjs, run by `npm run build` and `prepare`): the
 * daemon in one file that holds every module of it and still finds what it loads by URL (koffi,
 * the worker files) where tsc put them; `ecryptfs` and mount.ecryptfs from bundle/cli/. A bundle
 * is chosen only while it is not older than dist/src, and real mounts run it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DAEMON_SCRIPT, freshBundle } from '../../src/mount/daemon-fork.js';
import { tempDir } from '../helpers/fixtures.js';
import { isMounted, mountSkipReason, mountVolume } from './harness.js';
import { readMountState } from '../../src/mount/state.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

test('freshBundle: the bundle only while it is there and not older than the plain script; ECRYPTFS_BUNDLE=0 never', () => {
  const t = tempDir('ecryptfs-bundle-pick-');
  try {
    const plain = join(t.path, 'daemon.js');
    const bundle = join(t.path, 'bundle.js');
    writeFileSync(plain, '');
    assert.equal(freshBundle(plain, bundle), plain, 'no bundle');
    writeFileSync(bundle, '');
    utimesSync(plain, 1000, 1000);
    utimesSync(bundle, 2000, 2000);
    assert.equal(freshBundle(plain, bundle), bundle, 'built after tsc');
    utimesSync(bundle, 1000, 1000);
    assert.equal(freshBundle(plain, bundle), bundle, 'same time (npm pack gives every file one)');
    utimesSync(plain, 3000, 3000);
    assert.equal(freshBundle(plain, bundle), plain, 'tsc ran again since: stale');
    utimesSync(plain, 1000, 1000);
    process.env.ECRYPTFS_BUNDLE = '0';
    try {
      assert.equal(freshBundle(plain, bundle), plain, 'ECRYPTFS_BUNDLE=0');
    } finally {
      delete process.env.ECRYPTFS_BUNDLE;
    }
  } finally {
    t.cleanup();
  }
});

test('the bundle holds every module of the daemon and loads koffi and its workers from dist/src', () => {
  const t = tempDir('ecryptfs-bundle-');
  try {
    const r = spawnSync(process.execPath, [join(ROOT, 'scripts', 'bundle.mjs'), '--outdir', t.path], { encoding: 'utf8', cwd: ROOT });
    assert.equal(r.status, 0, r.stderr);
    const file = join(t.path, 'daemon.cjs');
    const text = readFileSync(file, 'utf8');
    assert.doesNotMatch(text, /^\s*(import|export)\b[^;]*from\s*["']\.\.?\//m, 'no relative import is left');
    assert.doesNotMatch(text, /import\.meta/, 'CommonJS: nothing of ES modules is left');
    // Every URL a module made from its own import.meta.url points at the file it meant.
    const urlRe = String.raw`new URL\("([^"]+)", require\("node:url"\)\.pathToFileURL\(__filename\)\.href\)`;
    const urls = [...text.matchAll(new RegExp(urlRe, 'g'))].map((m) => m[1]);
    assert.ok(urls.some((u) => u.endsWith('/src/sys/libc.js')), 'libc.js loads koffi by its own URL');
    for (const u of urls) assert.ok(existsSync(join(t.path, u)), `${u} resolves from the bundle to an existing file`);
    for (const w of ['./pool-worker.js', './prefetch-worker.js']) {
      const at = text.indexOf(`new URL("${w}", new URL("`);
      assert.ok(at > 0, `${w} is still loaded beside its module`);
      const base = new RegExp(urlRe).exec(text.slice(at + w.length + 10))![1];
      assert.ok(existsSync(join(dirname(join(t.path, base)), w)), `${w} exists beside ${base}`);
    }
    // Without an IPC channel the daemon only loads koffi and ends: that load goes through the rewritten URL.
    const run = spawnSync(process.execPath, ['--openssl-legacy-provider', file], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(run.status, 0, run.stderr);
    // Through its CommonJS boot, as daemon-fork.ts starts it, the ES module loader never starts.
    const boot = join(t.path, 'daemon-boot.cjs');
    const viaBoot = spawnSync(process.execPath, ['--openssl-legacy-provider', boot, file], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, NODE_DEBUG: 'esm' } });
    assert.equal(viaBoot.status, 0, viaBoot.stderr);
    assert.doesNotMatch(viaBoot.stderr, /ESM/, 'no ES module was loaded');
  } finally {
    t.cleanup();
  }
});

const STALE = 'dist/src/bundle is missing or older than dist/src (run `npm run build`, as npm test does)';
const bundleSkip = (): string | false => mountSkipReason() || (DAEMON_SCRIPT().endsWith('/bundle/daemon.cjs') ? false : STALE);

test('a mount after `npm run build` is served by the bundled daemon', { skip: bundleSkip() }, async () => {
  const m = await mountVolume('ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=y');
  try {
    const pid = (await readMountState(m.upper))?.pid;
    assert.ok(pid, 'the mount has a record with its daemon');
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    assert.ok(argv.some((a) => a.endsWith('/dist/src/bundle/daemon.cjs')), argv.join(' '));
    assert.ok(argv.some((a) => a.endsWith('/dist/src/bundle/daemon-boot.cjs')), argv.join(' '));
    writeFileSync(join(m.upper, 'f.txt'), 'through the bundle');
    assert.equal(readFileSync(join(m.upper, 'f.txt'), 'utf8'), 'through the bundle');
  } finally {
    await m.cleanup();
  }
});

/**
 * Run a bin/ command with the module loaders' traces: the files it loaded as ES modules (`loaded`)
 * and through `require` (`required`, koffi's native parts included), and its result.
 */
function traced(bin: string, args: string[]): { r: SpawnSyncReturns<string>; loaded: string[]; required: string[] } {
  const r = spawnSync(process.execPath, ['--openssl-legacy-provider', join(ROOT, 'bin', bin), ...args], {
    encoding: 'utf8', env: { ...process.env, NODE_DEBUG: 'esm,module' }, timeout: 60_000,
  });
  const loaded = [...r.stderr.matchAll(/Storing file:\/\/(\S+) /g)].map((m) => m[1].slice(ROOT.length - 1));
  const required = [...r.stderr.matchAll(/^MODULE \d+: load "([^"]+)"/gm)].map((m) => m[1].slice(ROOT.length - 1));
  return { r, loaded, required };
}

test('ecryptfs mount and mount.ecryptfs load the bundled command, and it mounts', { skip: bundleSkip() }, () => {
  const t = tempDir('ecryptfs-bundle-cli-');
  try {
    for (const [bin, sub] of [['ecryptfs.js', ['mount']], ['mount.ecryptfs.js', []]] as const) {
      const lower = join(t.path, `${bin}-lower`);
      const upper = join(t.path, `${bin}-upper`);
      spawnSync('mkdir', [lower, upper]);
      writeFileSync(join(t.path, 'pw'), 'passphrase_passwd=bundle-test\n', { mode: 0o600 });
      const opts = `key=passphrase:passphrase_passwd_file=${join(t.path, 'pw')},ecryptfs_cipher=aes,ecryptfs_key_bytes=16,ecryptfs_passthrough=n,ecryptfs_enable_filename_crypto=n,no_sig_cache`;
      const { r, loaded, required } = traced(bin, [...sub, lower, upper, '-o', opts]);
      try {
        assert.equal(r.status, 0, r.stderr.split('\n').filter((l) => !l.startsWith('ESM') && !l.startsWith('MODULE') && !/^\s/.test(l)).join('\n'));
        assert.ok(isMounted(upper), `${bin}: mounted`);
        writeFileSync(join(upper, 'f'), bin);
        assert.equal(readFileSync(join(upper, 'f'), 'utf8'), bin);
        if (bin === 'ecryptfs.js') {
          // CommonJS throughout: the fork and the command from the bundle, no ES module loaded.
          assert.deepEqual(loaded, [], `${bin}: no ES module`);
          assert.deepEqual(required.filter((f) => f.startsWith('/dist/src/')), ['/dist/src/bundle/daemon-fork.cjs', '/dist/src/bundle/cli/ecryptfs.cjs'], `${bin}: the bundles only`);
          assert.deepEqual(required.filter((f) => f.includes('/node_modules/') && !/\/(@koromix\/)?koffi/.test(f)), [], `${bin}: no package but koffi from node_modules`);
          continue;
        }
        // Of dist/src only daemon-fork.js (which holds the preforked daemon: one copy of it) and its heap-flags.js.
        const ours = loaded.filter((f) => f.startsWith('/dist/src/'));
        assert.ok(ours.some((f) => f.startsWith('/dist/src/bundle/cli/')), `${bin} loaded the bundle: ${ours.join(' ')}`);
        assert.deepEqual(ours.filter((f) => !f.startsWith('/dist/src/bundle/')).sort(), ['/dist/src/mount/daemon-fork.js', '/dist/src/mount/heap-flags.js'], `${bin}: nothing else of dist/src`);
        // Packages are bundled too (koffi, native, is required, not imported: not in this trace).
        assert.deepEqual(loaded.filter((f) => f.includes('/node_modules/')), [], `${bin}: no package from node_modules`);
      } finally {
        spawnSync('umount', [upper]);
      }
    }
  } finally {
    t.cleanup();
  }
});

test('every command of the bundled `ecryptfs` answers --help, and it decrypts the demo vault', { skip: existsSync(join(ROOT, 'dist/src/bundle/cli/ecryptfs.cjs')) && DAEMON_SCRIPT().endsWith('/bundle/daemon.cjs') ? false : STALE }, () => {
  const help = traced('ecryptfs.js', ['--help']);
  assert.equal(help.r.status, 0, help.r.stderr.slice(-2000));
  assert.ok(help.required.includes('/dist/src/bundle/cli/ecryptfs.cjs'), help.required.join(' '));
  const commands = [...help.r.stdout.matchAll(/^ {2}([a-z][a-z-]*)/gm)].map((m) => m[1]).filter((c) => c !== 'help');
  assert.ok(commands.includes('mount') && commands.includes('decrypt'), help.r.stdout);
  for (const c of commands) {
    const r = spawnSync(process.execPath, ['--openssl-legacy-provider', join(ROOT, 'bin', 'ecryptfs.js'), c, '--help'], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `${c} --help: ${r.stderr}`);
  }
  // A subcommand's modules (dynamic imports inside the bundle) at work: the kernel-written demo vault.
  const t = tempDir('ecryptfs-bundle-demo-');
  try {
    const out = join(t.path, 'out');
    const d = traced('ecryptfs.js', ['decrypt', join(ROOT, 'demo/vault'), '-o', out, '--passphrase-file', join(ROOT, 'demo/passphrase.txt')]);
    assert.equal(d.r.status, 0, d.r.stderr.slice(-2000));
    assert.deepEqual(d.required.filter((f) => f.startsWith('/dist/src/')), ['/dist/src/bundle/daemon-fork.cjs', '/dist/src/bundle/cli/ecryptfs.cjs'], 'the bundle only');
    const listing = spawnSync('bash', [join(ROOT, '.ci/tree-listing'), out], { encoding: 'utf8' });
    assert.equal(listing.stdout, readFileSync(join(ROOT, '.ci/demo-expected.txt'), 'utf8'));
  } finally {
    t.cleanup();
  }
});
