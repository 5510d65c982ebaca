import type { IncomingMessage } from 'node:http';

/** How long, and how much, to read of a body nobody wants before closing the connection. */
const DRAIN_MS = 1000;
const DRAIN_BYTES = 8 * 1024 * 1024;

/**
 * Once the answer is out, a request body that was not read to its end (a refused upload) is
 * read and dropped for a moment, so the client can take in the answer, and then the connection
 * is closed: Node would otherwise read all the rest of a body that nobody wants. Closing at once
 * risks a reset that loses the answer while the client is still sending.
 */
export function finishUnreadBody(req: IncomingMessage): void {
  if (req.complete || !req.socket || req.socket.destroyed) return;
  let drained = 0;
  const close = () => req.socket?.destroy();
  const timer = setTimeout(close, DRAIN_MS);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > DRAIN_BYTES) close();
  });
  req.once('end', () => clearTimeout(timer));
  req.once('close', () => clearTimeout(timer));
  req.resume();
}
