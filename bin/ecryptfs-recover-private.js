#!/usr/bin/env -S node --openssl-legacy-provider
// CommonJS (bin/package.json): see ecryptfs.js.
import("../dist/src/cli/recover-private.js").then((m) => m.recoverPrivateMain());
