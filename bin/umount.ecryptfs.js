#!/usr/bin/env -S node --openssl-legacy-provider
// dist/src/cli/mount-helper.js, bundled (scripts/bundle.mjs) when the bundle is not older than it.
// CommonJS (bin/package.json): see ecryptfs.js.
const { join } = require("node:path");
const { pathToFileURL } = require("node:url");
const dist = join(__dirname, "..", "dist", "src");
import(pathToFileURL(join(dist, "mount", "daemon-fork.js")).href)
  .then((f) => import(pathToFileURL(f.freshBundle(join(dist, "cli", "mount-helper.js"), join(dist, "bundle", "cli", "mount-helper.js"))).href))
  .then((m) => m.umountHelperMain());
