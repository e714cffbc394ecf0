#!/usr/bin/env -S node --openssl-legacy-provider
import { setupPrivateMain } from "../dist/src/cli/private.js";
setupPrivateMain();
