#!/usr/bin/env -S node --openssl-legacy-provider
// A root mount forks its daemon before this command loads its own modules (see daemon-fork.ts),
// then loads them bundled (scripts/bundle.mjs) when the bundle is not older than dist/src.
// CommonJS (bin/package.json): with a fresh bundle the fork goes through daemon-fork's CommonJS
// copy (bundle/daemon-fork.cjs) before Node starts its ES module loader, ~5 ms earlier in a
// mount (PERFORMANCE.md, mount start, fourth pass); else through dist/src as before.
const { statSync } = require("node:fs");
const { join } = require("node:path");
const { pathToFileURL } = require("node:url");
const dist = join(__dirname, "..", "dist", "src");
const forkCjs = join(dist, "bundle", "daemon-fork.cjs");
const built = statSync(forkCjs, { throwIfNoEntry: false });
const fork = process.env.ECRYPTFS_BUNDLE !== "0" && built && built.mtimeMs >= statSync(join(dist, "mount", "daemon-fork.js")).mtimeMs
  ? Promise.resolve(require(forkCjs))
  : import(pathToFileURL(join(dist, "mount", "daemon-fork.js")).href);
fork.then((f) => {
  f.preforkForCommand(process.argv.slice(2));
  return import(pathToFileURL(f.freshBundle(join(dist, "cli", "main.js"), join(dist, "bundle", "cli", "main.js"))).href);
}).then((m) => m.startMain());
