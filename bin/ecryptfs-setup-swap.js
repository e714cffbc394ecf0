#!/usr/bin/env -S node --openssl-legacy-provider
import { setupSwapMain } from "../dist/src/cli/setup-swap.js";
setupSwapMain();
