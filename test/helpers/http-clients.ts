import http from 'node:http';
import net from 'node:net';

export const MiB = 1024 * 1024;
export const BOUNDARY = 'tfmBoundary7MA4YWxkTrZu0gW';

/** A multipart body written out by hand (`\n` becomes CRLF): for malformed and hostile inputs. */
export function rawForm(text: string, boundary = BOUNDARY): { body: Buffer; headers: Record<string, string> } {
  const body = Buffer.from(text.replaceAll('\n', '\r\n'), 'latin1');
  return { body, headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(body.length) } };
}

/** One text field part. */
export const fieldPart = (name: string, value: string) => `--${BOUNDARY}\nContent-Disposition: form-data; name="${name}"\n\n${value}\n`;

/** One file part. */
export const filePart = (name: string, filename: string, data = 'data', type = 'application/octet-stream') =>
  `--${BOUNDARY}\nContent-Disposition: form-data; name="${name}"; filename="${filename}"\nContent-Type: ${type}\n\n${data}\n`;

export const formEnd = `--${BOUNDARY}--\n`;

/** A multipart body with one file of `size` zero bytes (the head and tail built, the file bytes generated). */
export function bigFileForm(size: number, field = 'file'): { head: Buffer; tail: Buffer; length: number } {
  const head = Buffer.from(
    `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${field}"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${BOUNDARY}--\r\n`);
  return { head, tail, length: head.length + size + tail.length };
}

export interface RawReply {
  /** The status line's code, or 0 when no answer came. */
  status: number;
  /** The whole answer as text (head and body). */
  text: string;
  /** How the connection ended for the client. */
  error?: string;
  /** Milliseconds from the end of sending to the answer (or the end). */
  ms: number;
}

/**
 * A client that sends its whole request before it reads anything (Python's http.client and
 * urllib do): one net.Socket, the head then `size` bytes of file, then the tail; only once all of
 * it is written does it read the answer. `connectionClose` adds `Connection: close`, as urllib does.
 */
export function sendFirstUpload(
  port: number,
  path: string,
  size: number,
  { connectionClose = false, field = 'file' }: { connectionClose?: boolean; field?: string } = {},
): Promise<RawReply> {
  const form = bigFileForm(size, field);
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let sentAt = 0;
    let error: string | undefined;
    const done = () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      resolve({ status, text, error, ms: Date.now() - (sentAt || Date.now()) });
    };
    socket.pause(); // read nothing until everything is sent
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => (error ??= err.code ?? err.message));
    socket.on('close', done);
    socket.on('end', () => socket.end());
    const head =
      `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\n` +
      `Content-Length: ${form.length}\r\n${connectionClose ? 'Connection: close\r\n' : ''}\r\n`;
    void (async () => {
      const write = (data: Buffer | string) =>
        new Promise<void>((ok) => {
          if (socket.destroyed) return ok();
          if (socket.write(data)) return ok();
          const done = () => {
            socket.off('drain', done).off('close', done);
            ok();
          };
          socket.on('drain', done).on('close', done);
        });
      await write(head);
      await write(form.head);
      const block = Buffer.alloc(MiB);
      for (let sent = 0; sent < size && !socket.destroyed; sent += block.length) await write(block.subarray(0, Math.min(block.length, size - sent)));
      await write(form.tail);
      sentAt = Date.now();
      socket.resume();
      // An answer that never comes: give up after 30 s (the request timeout would be 300 s).
      setTimeout(() => socket.destroy(), 30_000).unref();
    })();
  });
}

/**
 * Sends a request head and the first `bytes` of a declared `declared`-byte body, then waits
 * (reading as it comes): what a slow or stalled client does. Resolves with the answer once the
 * connection ends, or after `waitMs`.
 */
export function partialUpload(port: number, path: string, headers: Record<string, string>, first: Buffer, waitMs: number): Promise<RawReply & { closed: boolean }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const started = Date.now();
    const chunks: Buffer[] = [];
    let closed = false;
    let error: string | undefined;
    const finish = () => {
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text, error, closed, ms: Date.now() - started });
    };
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => (error ??= err.code ?? err.message));
    socket.on('close', () => {
      closed = true;
      clearTimeout(timer);
      finish();
    });
    const timer = setTimeout(() => {
      socket.destroy();
    }, waitMs);
    const head = `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    socket.write(head);
    socket.write(first);
  });
}

/** `form` with the text `marker` replaced by `bytes` (for binary file content that must not go through the CRLF rewrite). */
export function withBytes(form: { body: Buffer; headers: Record<string, string> }, marker: string, bytes: Buffer): { body: Buffer; headers: Record<string, string> } {
  const at = form.body.indexOf(marker);
  const body = Buffer.concat([form.body.subarray(0, at), bytes, form.body.subarray(at + marker.length)]);
  return { body, headers: { ...form.headers, 'content-length': String(body.length) } };
}

/**
 * Three files in the field `f` to `POST /upload`, over a raw connection: the third (over a
 * `maxCount` of 2) only once `firstOnDisk()` says the first file is whole on disk. Resolves with
 * the start of the answer; the connection is then dropped.
 */
export async function thirdFileAfterTheFirst(port: number, firstOnDisk: () => Promise<void>): Promise<string> {
  const form = rawForm(`${filePart('f', 'a', 'first')}${filePart('f', 'b', 'second')}${filePart('f', 'c', 'third')}${formEnd}`);
  const cut = form.body.indexOf(`--${BOUNDARY}`, form.body.indexOf('second'));
  const socket = net.connect(port, '127.0.0.1');
  const answer = new Promise<string>((resolve) => {
    socket.once('data', (chunk: Buffer) => {
      resolve(chunk.toString('latin1'));
      socket.destroy();
    });
  });
  socket.write(`POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: ${form.headers['content-type']}\r\nContent-Length: ${form.body.length}\r\n\r\n`);
  socket.write(form.body.subarray(0, cut));
  await firstOnDisk();
  socket.write(form.body.subarray(cut));
  return answer;
}

export interface DeclaredReply extends RawReply {
  /** Whether the server sent `100 Continue`. */
  continued: boolean;
  /** Bytes of body written to the socket before the answer came (or the connection ended). */
  sent: number;
}

/**
 * A multipart upload that declares `declared` bytes of body and reads as it sends, the way curl
 * does: with `expectContinue` it sends `Expect: 100-continue` and waits up to `waitMs` for the
 * server's word before sending any body (curl waits 1 s); without, or once told `100 Continue`, it
 * streams zeros (at most `declared`) until an answer arrives, then stops sending and ends its side
 * once the answer is whole. With `chunked`, the body goes as `Transfer-Encoding: chunked` and
 * `declared` is only how much it may send. Nothing the size of `declared` is ever held in memory.
 */
export function declaredUpload(
  port: number,
  path: string,
  declared: number,
  { expectContinue = false, waitMs = 1000, chunked = false }: { expectContinue?: boolean; waitMs?: number; chunked?: boolean } = {},
): Promise<DeclaredReply> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const started = Date.now();
    const chunks: Buffer[] = [];
    let error: string | undefined;
    let sent = 0;
    let sending = false;
    let answered = false;
    const text = () => Buffer.concat(chunks).toString('latin1');
    const finalStatus = () => Number(/(?:^|\r\n)HTTP\/1\.1 ([2-5]\d\d)/.exec(text())?.[1] ?? 0);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (/^HTTP\/1\.1 100 /.test(text()) && !sending && finalStatus() === 0) startSending();
      if (finalStatus() !== 0) answered = true;
    });
    socket.on('error', (err: NodeJS.ErrnoException) => (error ??= err.code ?? err.message));
    socket.on('end', () => socket.end());
    socket.on('close', () => {
      const all = text();
      resolve({ status: finalStatus(), text: all, error, ms: Date.now() - started, continued: /^HTTP\/1\.1 100 /.test(all), sent });
    });
    setTimeout(() => socket.destroy(), 30_000).unref(); // an answer that never comes
    const head = Buffer.from(
      `--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`,
    );
    socket.write(
      `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=${BOUNDARY}\r\n` +
        `${chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${declared}`}\r\n${expectContinue ? 'Expect: 100-continue\r\n' : ''}\r\n`,
    );
    if (expectContinue) {
      setTimeout(() => !sending && !answered && startSending(), waitMs).unref();
    } else {
      startSending();
    }
    function startSending(): void {
      sending = true;
      const block = Buffer.alloc(256 * 1024);
      const pump = () => {
        while (!answered && !socket.destroyed && sent < declared) {
          const piece = sent === 0 ? head : block.subarray(0, Math.min(block.length, declared - sent));
          sent += piece.length;
          if (!socket.write(chunked ? Buffer.concat([Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n')]) : piece)) {
            socket.once('drain', pump);
            return;
          }
        }
      };
      pump();
    }
  });
}

/**
 * Serves `handler` (an Express app, say) on a free loopback port, and pushes onto `closers` what
 * closes it, every connection first. Resolves with its base URL.
 */
export async function listenClosing(handler: http.RequestListener, closers: (() => Promise<void>)[]): Promise<string> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}
