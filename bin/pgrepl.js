#!/usr/bin/env node
// Thin launcher: the CLI is bundled into dist/pgrepl.mjs (by `npm install` through `prepare`, and by
// `npm run build`); scripts/bundle-cli.mjs says why.
import { main } from '../dist/pgrepl.mjs';

process.exitCode = await main(process.argv);
