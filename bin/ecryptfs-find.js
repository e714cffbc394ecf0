#!/usr/bin/env -S node --openssl-legacy-provider
import { findToolMain } from "../dist/src/cli/find.js";
findToolMain();
