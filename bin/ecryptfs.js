#!/usr/bin/env -S node --openssl-legacy-provider
// A root mount forks its daemon before this command loads its own modules (see daemon-fork.ts),
// then loads them bundled (scripts/bundle.mjs) when the bundle is not older than dist/src.
import { freshBundle, preforkForCommand } from "../dist/src/mount/daemon-fork.js";
import { fileURLToPath, pathToFileURL } from "node:url";
preforkForCommand(process.argv.slice(2));
const file = (p) => fileURLToPath(new URL(p, import.meta.url));
const { startMain } = await import(pathToFileURL(freshBundle(file("../dist/src/cli/main.js"), file("../dist/src/bundle/cli/main.js"))).href);
startMain();
