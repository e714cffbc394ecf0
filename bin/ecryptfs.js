#!/usr/bin/env -S node --openssl-legacy-provider
// A root mount forks its daemon before this command loads its own modules (see daemon-fork.ts).
import { preforkForCommand } from "../dist/src/mount/daemon-fork.js";
preforkForCommand(process.argv.slice(2));
const { startMain } = await import("../dist/src/cli/main.js");
startMain();
