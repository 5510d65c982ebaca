import type { IncomingMessage } from 'node:http';

/** How long the half-closed connection lingers before it is dropped. */
const LINGER_MS = 2000;

/**
 * Once the answer is out, a request body that was not read to its end (a refused upload) is not
 * read any further: Node would otherwise read all the rest of a body that nobody wants. Closing
 * the connection at once would risk a reset that loses the answer while the client is still
 * sending, so the connection is half-closed (the client sees the end of the answer) and dropped
 * a moment later.
 */
export function finishUnreadBody(req: IncomingMessage): void {
  const socket = req.socket;
  if (req.complete || !socket || socket.destroyed) return;
  req.pause();
  socket.pause();
  socket.end();
  setTimeout(() => socket.destroy(), LINGER_MS).unref();
}
