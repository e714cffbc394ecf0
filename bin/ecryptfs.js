#!/usr/bin/env -S node --openssl-legacy-provider
import { main } from "../dist/src/cli/main.js";
import { runMain } from "../dist/src/cli/run.js";
runMain("ecryptfs", () => main());
