#!/usr/bin/env -S node --openssl-legacy-provider
import { mountHelperMain } from "../dist/src/cli/mount-helper.js";
mountHelperMain();
