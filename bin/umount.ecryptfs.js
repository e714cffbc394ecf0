#!/usr/bin/env -S node --openssl-legacy-provider
import { umountHelperMain } from "../dist/src/cli/mount-helper.js";
umountHelperMain();
