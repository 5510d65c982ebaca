// The end-to-end self-check of the upload examples, run by `npm run examples:check`: starts the
// server, uploads a file over HTTP, waits for the worker's result, verifies it, and checks that
// nothing is left on disk. Exits non-zero on any failure.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Runs the check against `start` (an example server's start function). */
export async function checkUploadExample(name, start) {
  setTimeout(() => {
    console.error(`${name} check: timed out`);
    process.exit(1);
  }, 60_000).unref();

  const parent = fs.mkdtempSync(path.join(os.tmpdir(), `${name}-check-`));
  const root = path.join(parent, 'root');
  process.on('exit', () => fs.rmSync(parent, { recursive: true, force: true }));
  const app = await start({ root, maxBytes: 64 * 1024 * 1024 });
  try {
    const bytes = randomBytes(8 * 1024 * 1024);
    const form = new FormData();
    form.append('file', new Blob([bytes]), 'check.bin');
    const response = await fetch(`${app.url}/upload`, { method: 'POST', body: form });
    assert.equal(response.status, 202, await response.clone().text());
    const { job: id, ticket } = await response.json();
    assert.equal(ticket.size, bytes.length);

    let job;
    for (const deadline = Date.now() + 30_000; ; await sleep(50)) {
      job = await (await fetch(`${app.url}/jobs/${id}`)).json();
      if (job.state === 'done' || job.state === 'failed') break;
      assert.ok(Date.now() < deadline, `job ${id} still ${job.state}`);
    }
    assert.deepEqual(job.result, {
      size: bytes.length,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      head: bytes.subarray(0, 16).toString('hex'),
    });

    const notMultipart = await fetch(`${app.url}/upload`, { method: 'POST', body: 'plain text' });
    assert.equal(notMultipart.status, 400);
  } finally {
    await app.close();
  }
  // Closed: the session is gone, and the worker consumed the handoff entry (an empty handoff/ stays).
  const left = fs.readdirSync(root, { recursive: true }).filter((name) => name !== 'handoff' && name !== '.tempfile-manager');
  assert.deepEqual(left, [], `left under ${root}`);
  console.log(`${name} check passed: 8 MiB uploaded, handed off and processed; nothing left under the root`);
}
