import { fileURLToPath } from 'node:url';

/** bin/pgrepl.js, which background agents are started with (from dist/src/cli/ up to the package root). */
export const CLI_SCRIPT = fileURLToPath(new URL('../../../bin/pgrepl.js', import.meta.url));
