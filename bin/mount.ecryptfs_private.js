#!/usr/bin/env -S node --openssl-legacy-provider
import { mountPrivateHelperMain } from "../dist/src/cli/mount-private.js";
mountPrivateHelperMain();
