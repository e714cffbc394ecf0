#!/usr/bin/env -S node --openssl-legacy-provider
// CommonJS (bin/package.json): see ecryptfs.js.
import("../dist/src/cli/private.js").then((m) => m.umountPrivateToolMain());
