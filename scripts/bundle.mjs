/* global process, console, URL */
// After tsc (`npm run build`, `prepare`): the programs of a mount bundled, each into few files
// (esbuild), in dist/src/bundle/: daemon.cjs (with daemon-boot.cjs and daemon-fork.cjs), the
// mount daemon's ~60 modules in one CommonJS file, and cli/: the `ecryptfs` command
// (ecryptfs.cjs) and mount.ecryptfs (mount-helper.js, with chunks). Loading one file instead of a module graph saves each
// process ~20-30 ms of CPU at every mount (the ES module loader resolves, reads and links each
// module; measured in README Performance). dist/src stays as tsc wrote it: a bundle is only an
// optimisation, chosen while it is not older than dist/src (freshBundle in
// src/mount/daemon-fork.ts), so a plain `tsc -p .` after a change runs dist/src itself.
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const src = join(root, 'dist', 'src');
// `--outdir DIR` (the tests): somewhere else, still loading koffi and the worker files from dist/src.
const at = process.argv.indexOf('--outdir');
const outdir = at > 0 ? process.argv[at + 1] : join(src, 'bundle');

let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  // A build without the dev dependencies (it cannot happen through npm ci / prepare): no bundle.
  console.error('ecryptfs-ts: esbuild is not installed; dist/src/bundle not built (the commands load dist/src as it is)');
  process.exit(0);
}

/**
 * Each module keeps finding its neighbours (worker files, koffi, fusermount-helper.py, package.json)
 * where tsc put them: its import.meta.url becomes the URL of its original file. `shared` modules
 * stay outside the bundle, imported from dist/src: daemon-fork.js holds the daemon the launcher
 * (bin/ecryptfs.js) forked before loading the bundle, so there must be one copy of it.
 */
const fromDist = (out, shared = [], base = 'import.meta.url') => ({
  name: 'from-dist',
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (args) => {
      const path = join(args.resolveDir, args.path);
      return shared.includes(path) ? { path: relative(out, path), external: true } : undefined;
    });
    build.onLoad({ filter: /\.js$/ }, (args) => {
      let contents = readFileSync(args.path, 'utf8');
      if (contents.includes('import.meta.url')) {
        contents = contents.replaceAll('import.meta.url', `new URL(${JSON.stringify(relative(out, args.path))}, ${base}).href`);
      }
      return { contents, loader: 'js', resolveDir: dirname(args.path) };
    });
  },
});

// The packages too (commander, read, ...; loading commander from node_modules cost the command
// ~7 ms of CPU), except koffi, a native module; their CommonJS `require` calls get a real one.
const common = {
  bundle: true, platform: 'node', format: 'esm', target: 'node20', external: ['koffi'], logLevel: 'warning',
  banner: { js: "import { createRequire as __cjsRequire } from 'node:module'; const require = __cjsRequire(import.meta.url);" },
};

// Chunk names change with their content: none may be left from an earlier build.
rmSync(outdir, { recursive: true, force: true });
// The daemon and its boot as CommonJS (daemon-boot.cjs, daemon.cjs): with no ES module in the
// process Node never starts its ES module loader, ~5 ms of CPU and ~15 ms of wall time less on
// the daemon's start (the longer path of a mount; PERFORMANCE.md, mount start, fourth pass).
// Their modules find their neighbours from the bundle's own file (__filename), as above.
await esbuild.build({
  ...common,
  format: 'cjs',
  banner: {},
  entryPoints: { daemon: join(src, 'mount', 'daemon.js'), 'daemon-boot': join(src, 'mount', 'daemon-boot.js'), 'daemon-fork': join(src, 'mount', 'daemon-fork.js') },
  outdir,
  outExtension: { '.js': '.cjs' },
  plugins: [fromDist(outdir, [], 'require("node:url").pathToFileURL(__filename).href')],
});
// `ecryptfs` once more as one CommonJS file (cli/ecryptfs.cjs, every subcommand; each one's
// modules still run only when it does), which bin/ecryptfs.js requires after forking the
// daemon: the command then starts no ES module loader and reads no chunks through the thread
// pool; a mount's request goes out ~4 ms sooner (PERFORMANCE.md, mount start, fourth pass).
await esbuild.build({
  ...common,
  format: 'cjs',
  banner: {},
  entryPoints: { ecryptfs: join(src, 'cli', 'main.js') },
  outdir: join(outdir, 'cli'),
  outExtension: { '.js': '.cjs' },
  plugins: [fromDist(join(outdir, 'cli'), [], 'require("node:url").pathToFileURL(__filename).href')],
});
const cli = join(outdir, 'cli');
await esbuild.build({
  ...common,
  entryPoints: { 'mount-helper': join(src, 'cli', 'mount-helper.js') },
  outdir: cli,
  splitting: true,
  plugins: [fromDist(cli, [join(src, 'mount', 'daemon-fork.js')])],
});
