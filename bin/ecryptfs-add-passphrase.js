#!/usr/bin/env -S node --openssl-legacy-provider
// CommonJS (bin/package.json): see ecryptfs.js.
import("../dist/src/cli/keytools.js").then((m) => m.runTool("ecryptfs-add-passphrase"));
