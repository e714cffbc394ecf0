#!/usr/bin/env -S node --openssl-legacy-provider
// dist/src/cli/mount-helper.js, bundled (scripts/bundle.mjs) when the bundle is not older than it.
import { freshBundle } from "../dist/src/mount/daemon-fork.js";
import { fileURLToPath, pathToFileURL } from "node:url";
const file = (p) => fileURLToPath(new URL(p, import.meta.url));
const { mountHelperMain } = await import(pathToFileURL(freshBundle(file("../dist/src/cli/mount-helper.js"), file("../dist/src/bundle/cli/mount-helper.js"))).href);
mountHelperMain();
