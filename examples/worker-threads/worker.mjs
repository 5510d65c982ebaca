// One pool thread: its own TempFileManager on the shared root. For each ticket posted to it, it
// claims the entry (re-checking the sha256), counts lines and hashes the bytes, consumes the entry
// and answers.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { TempFileManager } from 'tempfile-manager';

const mgr = new TempFileManager({ root: workerData.root });

parentPort.on('message', async (ticket) => {
  try {
    parentPort.postMessage({ result: await processTicket(ticket) });
  } catch (err) {
    parentPort.postMessage({ error: { message: err.message, code: err.code } });
  }
});

// Consumed when the function resolves; a failure gives the entry back for another claimer.
function processTicket(ticket) {
  return mgr.withClaim(
    ticket,
    async (claimed) => {
      const hash = createHash('sha256');
      let lines = 0;
      for await (const chunk of fs.createReadStream(claimed.path)) {
        hash.update(chunk);
        for (const byte of chunk) if (byte === 0x0a) lines += 1;
      }
      return { name: claimed.meta.name, bytes: claimed.size, lines, digest: `sha256:${hash.digest('hex')}`, thread: threadId };
    },
    { verifyDigest: true },
  );
}
