#!/usr/bin/env -S node --openssl-legacy-provider
import { rewriteFileMain } from "../dist/src/cli/rewrite-file.js";
rewriteFileMain();
