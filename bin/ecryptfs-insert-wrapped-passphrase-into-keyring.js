#!/usr/bin/env -S node --openssl-legacy-provider
import { insertWrappedToolMain } from "../dist/src/cli/private.js";
insertWrappedToolMain();
