/* global process, console, URL */
// npm's `prepare` script: compiles dist/ wherever the package is built from a checkout.
// - `npm ci` / `npm install` in a clone, and `npm pack` (the tarball then ships dist/src): the
//   dependencies are there, so this only runs tsc (and the bundler, scripts/bundle.mjs);
// - `npm install -g .` from a clean clone: npm 7+ links the folder and runs `prepare` without
//   installing its dependencies, so they are installed here first (exactly package-lock.json's,
//   dev ones included, since tsc is one of them).
// Installing the packed tarball (or from the registry) never runs this: dist/ is in the package.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');

function run(cmd, args, env = process.env) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    console.error(`ecryptfs-ts: \`${[cmd, ...args].join(' ')}\` failed (exit ${r.status}) while building dist/`);
    process.exit(r.status ?? 1);
  }
}

// The outer npm's settings (global, prefix, ...) must not leak into a local install.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_config_/i.test(k)));
const npm = (args) => run(process.env.npm_execpath ? process.execPath : 'npm', [...(process.env.npm_execpath ? [process.env.npm_execpath] : []), ...args], env);
const hasDeps = existsSync(join(root, 'node_modules', 'commander'));

if (!existsSync(join(root, 'tsconfig.json')) && existsSync(join(root, 'dist', 'src', 'index.js'))) {
  // An unpacked package (the tarball's contents, linked by `npm install -g DIR`): dist/ is there,
  // only the runtime dependencies may be missing.
  if (!hasDeps) npm(['install', '--omit=dev', '--ignore-scripts', '--no-package-lock', '--no-audit', '--no-fund']);
  process.exit(0);
}
if (!existsSync(tsc) || !hasDeps) {
  console.error('ecryptfs-ts: installing the build dependencies into the checkout (npm ci --include=dev)');
  npm(['ci', '--include=dev', '--ignore-scripts', '--no-audit', '--no-fund']);
}
run(process.execPath, [tsc, '-p', '.']);
// The mount daemon in one file (scripts/bundle.mjs); without it the daemon loads dist/src as it is.
run(process.execPath, [join(root, 'scripts', 'bundle.mjs')]);
