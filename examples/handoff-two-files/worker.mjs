// worker.mjs: claims the ticket given as its argument, reads the file, consumes it.
import fs from 'node:fs/promises';
import { TempFileManager } from 'tempfile-manager';

const mgr = new TempFileManager();
const text = await mgr.withClaim(process.argv[2], (claimed) => fs.readFile(claimed.path, 'utf8'), { verifyDigest: true });
console.log(`worker ${process.pid} read: ${text.trim()}`); // the entry was consumed when the callback resolved
await mgr.close();
