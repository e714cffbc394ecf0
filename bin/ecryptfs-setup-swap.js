#!/usr/bin/env -S node --openssl-legacy-provider
// CommonJS (bin/package.json): see ecryptfs.js.
import("../dist/src/cli/setup-swap.js").then((m) => m.setupSwapMain());
