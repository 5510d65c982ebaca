// producer.mjs: writes a file, hands it off, prints its ticket.
import { TempFileManager } from 'tempfile-manager';

const mgr = new TempFileManager(); // <os.tmpdir()>/tempfile-manager-<uid>: the worker's root too
const file = await mgr.write(`report of ${new Date().toISOString()}\n`, { suffix: '.txt', hash: 'sha256' });
const ticket = await file.handoff({ ttlMs: 3_600_000 }); // the file now waits in <root>/handoff/
console.log(JSON.stringify(ticket));
await mgr.close();
