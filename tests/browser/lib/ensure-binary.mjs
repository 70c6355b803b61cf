// `npm test` runs this first (as `pretest`): builds the gateway with
// `cargo build -p switchyard` only if the binary is missing, so the build
// never counts against the suite's time limit.

import { ensureBinary } from './gateway.mjs';

const bin = ensureBinary({ build: true });
console.log(`switchyard binary: ${bin}`);
