#!/usr/bin/env -S node --openssl-legacy-provider
import { migrateHomeMain } from "../dist/src/cli/migrate-home.js";
migrateHomeMain();
