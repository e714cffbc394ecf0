#!/usr/bin/env -S node --openssl-legacy-provider
import { mountPrivateToolMain } from "../dist/src/cli/private.js";
mountPrivateToolMain();
