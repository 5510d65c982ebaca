// Child of syscalls.mjs, run under strace: sets every file contender up, does one warm-up
// create+dispose of <id>, then <n> more. A run with n = 0 is the baseline to subtract.
import { closeAll, fileContenders } from './create.mjs';
import { runOps } from './lib.mjs';

const [id, n, root] = process.argv.slice(2);
const contenders = await fileContenders(root);
const contender = contenders.find((c) => c.id === id);
if (!contender) throw new Error(`unknown contender ${id}`);
await runOps(contender, 1);
await runOps(contender, Number(n));
await closeAll(contenders);
