#!/usr/bin/env -S node --openssl-legacy-provider
import { verifyToolMain } from "../dist/src/cli/verify.js";
verifyToolMain();
