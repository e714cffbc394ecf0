#!/usr/bin/env -S node --openssl-legacy-provider
import { umountPrivateToolMain } from "../dist/src/cli/private.js";
umountPrivateToolMain();
