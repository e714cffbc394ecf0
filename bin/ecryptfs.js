#!/usr/bin/env -S node --openssl-legacy-provider
// A root mount forks its daemon before this command loads its own modules (see daemon-fork.ts),
// then loads them bundled (scripts/bundle.mjs) when the bundle is not older than dist/src.
// CommonJS (bin/package.json): with a fresh bundle the fork goes through daemon-fork's CommonJS
// copy (bundle/daemon-fork.cjs) and the command is bundle/cli/ecryptfs.cjs, so the process never
// starts Node's ES module loader (PERFORMANCE.md, mount start, fourth pass); else dist/src as before.
const { statSync } = require("node:fs");
const { join } = require("node:path");
const { pathToFileURL } = require("node:url");
const dist = join(__dirname, "..", "dist", "src");
// freshBundle (src/mount/daemon-fork.ts) as it must run before any module loads: keep the two in step.
const fresh = (plain, bundle) => {
  const b = process.env.ECRYPTFS_BUNDLE !== "0" && statSync(bundle, { throwIfNoEntry: false });
  return b && b.mtimeMs >= statSync(plain).mtimeMs;
};
const forkCjs = join(dist, "bundle", "daemon-fork.cjs");
const mainCjs = join(dist, "bundle", "cli", "ecryptfs.cjs");
if (fresh(join(dist, "mount", "daemon-fork.js"), forkCjs) && fresh(join(dist, "cli", "main.js"), mainCjs)) {
  require(forkCjs).preforkForCommand(process.argv.slice(2));
  require(mainCjs).startMain();
} else {
  import(pathToFileURL(join(dist, "mount", "daemon-fork.js")).href).then((f) => {
    f.preforkForCommand(process.argv.slice(2));
    return import(pathToFileURL(join(dist, "cli", "main.js")).href);
  }).then((m) => m.startMain());
}
