#!/usr/bin/env -S node --openssl-legacy-provider
import { umountPrivateHelperMain } from "../dist/src/cli/mount-private.js";
umountPrivateHelperMain();
