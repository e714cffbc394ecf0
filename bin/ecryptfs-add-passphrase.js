#!/usr/bin/env -S node --openssl-legacy-provider
import { runTool } from "../dist/src/cli/keytools.js";
runTool("ecryptfs-add-passphrase");
