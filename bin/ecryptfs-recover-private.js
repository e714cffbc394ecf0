#!/usr/bin/env -S node --openssl-legacy-provider
import { recoverPrivateMain } from "../dist/src/cli/recover-private.js";
recoverPrivateMain();
