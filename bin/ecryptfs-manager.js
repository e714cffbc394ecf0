#!/usr/bin/env -S node --openssl-legacy-provider
import { managerToolMain } from "../dist/src/cli/manager.js";
managerToolMain();
