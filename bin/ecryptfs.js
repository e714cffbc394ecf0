#!/usr/bin/env -S node --openssl-legacy-provider
import { startMain } from "../dist/src/cli/main.js";
startMain();
