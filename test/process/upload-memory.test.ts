import path from 'node:path';
import { expect, it } from 'vitest';
import { runToEndSync } from '../helpers/child.js';
import { freshRoot } from '../helpers/roots.js';

const fixture = path.join(import.meta.dirname, '../fixtures/upload-stall.mjs');
const KiB = 1024;
const CLIENTS = 32;

// The attacker's side: clients that send part of an upload and stall, their connections left open
// (a slow mobile client does the same, without meaning to). What each pins of the server's memory
// is counted after full collections, so it is what the server holds for it, not garbage. A peer
// that pipes the file into fs.createWriteStream() holds none of its bytes once they are written;
// here a stalled upload may hold one batch of the writer (16 KiB until it has filled one) and no
// more. The writer that
// kept two 256 KiB batch buffers for the whole life of every write held 256 KiB for each client
// stalled after 10 KiB, and 512 KiB after 300 KiB: 8 and 16 MiB for 32 of them. With 64 KiB
// batches, 64 KiB after 10 KiB; and after 300 KiB, 64 KiB more, the body's first chunk, kept
// (strongly) to be freed once the body ended.
it.each([
  ['express', 10],
  ['express', 300],
  ['fastify', 10],
  ['fastify', 300],
  ['web', 10], // handleUpload() under @hono/node-server
  ['web', 300],
])('%s: 32 clients stalled after %i KiB of their file pin at most 20 KiB of buffers each, and one batch if their write filled one', (adapter, kib) => {
  const { stdout: out } = runToEndSync(process.execPath, ['--expose-gc', fixture, freshRoot(), adapter, String(CLIENTS), String(kib)], {
    what: `the ${adapter} server with stalled clients`,
    timeoutMs: 80_000,
  });
  const { held, received, expected, onDisk, partial } = JSON.parse(out) as { held: number; received: number; expected: number; onDisk: number; partial: number };
  expect(received).toBe(expected); // every byte sent reached the server before it was measured
  expect(onDisk).toBeLessThanOrEqual(CLIENTS * kib * KiB);
  // A write holds one batch while its source stalls: 16 KiB until it has filled one. Past 16 KiB,
  // a client whose bytes are not all on disk may have: through the thread pool (where a loaded
  // machine sends writes, see local-disk.ts) chunks under 64 KiB are gathered, and the last ones
  // wait in a 64 KiB batch. On a quiet machine every chunk of the 300 KiB clients is written inline.
  const mayHaveFilledOne = kib > 16 ? partial : 0;
  expect(held).toBeLessThan(CLIENTS * 20 * KiB + mayHaveFilledOne * 64 * KiB + 512 * KiB);
}, 90_000);

// Connections kept alive after one upload each, idle, as a proxy's pool keeps them: the server
// must hold nothing of the answered requests. The close listener each connection gets was made
// where the connection's first request was bound, and kept that request (its 100 KiB field, its
// file's object, its response) for as long as the connection stayed open.
it.each(['express', 'fastify'])('%s: 16 idle keep-alive connections keep none of the requests they made', (adapter) => {
  const { stdout: out } = runToEndSync(process.execPath, ['--expose-gc', path.join(import.meta.dirname, '../fixtures/upload-kept-alive.mjs'), freshRoot(), adapter, '16'], {
    what: `the ${adapter} server with idle connections`,
    timeoutMs: 60_000,
  });
  const { answered, kept, openConnections } = JSON.parse(out) as { answered: number; kept: number; openConnections: number };
  expect(answered).toBe(16);
  expect(openConnections).toBe(16); // measured while every connection was still open
  expect(kept).toBe(0);
}, 70_000);

// A scope kept past its answer (an application's cache or log record; or, in the collector's eyes,
// a request's objects promoted to the old generation and not yet freed by a full collection) must
// not keep its request: a removed scope holds nothing of its exchange. It held the watcher of its
// writes' failures, whose closure held the request and its response: each request in flight at a
// collection of the young generation was promoted whole (bench/analyses/uploads.md).
it.each(['express', 'fastify'])('%s: a removed scope kept by the application keeps nothing of its request', (adapter) => {
  const { stdout: out } = runToEndSync(process.execPath, ['--expose-gc', path.join(import.meta.dirname, '../fixtures/upload-kept-alive.mjs'), freshRoot(), adapter, '16', 'hold-scopes'], {
    what: `the ${adapter} server keeping its scopes`,
    timeoutMs: 60_000,
  });
  const { answered, kept, heldScopes } = JSON.parse(out) as { answered: number; kept: number; heldScopes: number };
  expect(answered).toBe(16);
  expect(heldScopes).toBe(16); // every scope held, and removed
  expect(kept).toBe(0);
}, 70_000);
