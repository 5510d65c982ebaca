import { createHash, getHashes, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { ManagerContext, Owner } from './context.js';
import { createUniqueAsync, resolveNameParts, type NameOptions } from './create.js';
import { AbortedError, DisposedError, InvalidOptionError, SizeLimitError, TempFileError, toFileSystemError } from './errors.js';
import { TempFile } from './file.js';
import { CREATE_EXCLUSIVE } from './fs.js';
import { describe } from './names.js';
import { FileSink } from './sink.js';
import { openSource, type SourceReader, type WriteSource } from './source.js';

/** Options of `write()`. */
export interface WriteOptions extends NameOptions {
  /** Refuse more than this many bytes: the source is stopped at the limit. @default Infinity */
  readonly maxBytes?: number;
  /** Aborts the write; the partial file is removed. */
  readonly signal?: AbortSignal;
  /** Called with the bytes on disk so far, after each batch is written. */
  readonly onProgress?: (bytesWritten: number) => void;
  /** A `crypto` hash algorithm (`'sha256'`, ...): the digest is computed as the bytes stream by. */
  readonly hash?: string;
}

interface ResolvedWriteOptions {
  readonly name: NameOptions;
  readonly maxBytes: number;
  /** The caller's signal, and the owning scope's (aborted when the scope is disposed). */
  readonly signals: readonly AbortSignal[];
  readonly onProgress: ((bytesWritten: number) => void) | undefined;
  readonly hash: string | undefined;
}

const WRITE_OPTIONS = new Set(['suffix', 'prefix', 'maxBytes', 'signal', 'onProgress', 'hash']);

/**
 * Streams `source` into a new temp file in constant memory. On any failure the source is
 * stopped, the partial file removed and its bytes released before the promise rejects.
 * @internal
 */
export async function writeTempFile(
  context: ManagerContext,
  owner: Owner,
  source: WriteSource,
  options: WriteOptions | undefined,
  ownerSignal?: AbortSignal,
): Promise<TempFile> {
  const given = resolveWriteOptions(options);
  const resolved = ownerSignal ? { ...given, signals: [...given.signals, ownerSignal] } : given;
  resolveNameParts(context, resolved.name); // refuse a bad name before anything touches the disk
  const reader = openSource(source);
  let file: TempFile | undefined;
  let handle: FileHandle | undefined;
  try {
    throwIfAborted(resolved.signals);
    await context.freeSpace.check(0);
    const created = await createUniqueAsync(context, resolved.name, 'file', (path) =>
      context.fs.promises.open(path, CREATE_EXCLUSIVE, 0o600),
    );
    handle = created.result;
    file = new TempFile(context, owner, created.path, created.suffix);
    await copy(context, reader, handle, file, resolved);
    const closing = handle;
    handle = undefined;
    await closing.close();
    return file;
  } catch (err) {
    reader.stop();
    await handle?.close().catch(() => {});
    await file?.remove().catch(() => {});
    throw toWriteError(err, resolved.signals, file?.path);
  }
}

async function copy(
  context: ManagerContext,
  reader: SourceReader,
  handle: FileHandle,
  file: TempFile,
  options: ResolvedWriteOptions,
): Promise<void> {
  const hash: Hash | undefined = options.hash ? createHash(options.hash) : undefined;
  const sink = new FileSink(handle, file.path);
  const progress = progressReporter(sink, options.onProgress);
  const source = abortable(reader, options.signals);
  let size = 0;
  let nextCheck = context.freeSpace.guarded ? 0 : Infinity;
  try {
    for (let chunk = await source.next(); chunk !== undefined; chunk = await source.next()) {
      if (chunk.length === 0) continue;
      if (size + chunk.length > options.maxBytes) throw new SizeLimitError(options.maxBytes);
      file.account(chunk.length);
      size += chunk.length;
      hash?.update(chunk);
      await sink.write(chunk);
      progress();
      if (size >= nextCheck) nextCheck = size + (await context.freeSpace.check(0));
    }
  } finally {
    source.done();
  }
  await sink.end();
  progress();
  file.setContent(size, hash && options.hash ? `${options.hash.toLowerCase()}:${hash.digest('hex')}` : undefined);
}

function progressReporter(sink: FileSink, onProgress: ((bytes: number) => void) | undefined): () => void {
  if (!onProgress) return () => {};
  let reported = 0;
  return () => {
    if (sink.bytesOnDisk === reported) return;
    reported = sink.bytesOnDisk;
    onProgress(reported);
  };
}

/**
 * `reader.next()`, raced against the abort signals (the caller's and the scope's). One listener
 * per write rejects the read then pending (a race against one long-lived promise would keep every
 * chunk it ever won alive); `done()` removes it.
 */
function abortable(reader: SourceReader, signals: readonly AbortSignal[]): { next(): Promise<Buffer | undefined>; done(): void } {
  const read = reader.next;
  if (signals.length === 0) return { next: read, done: () => {} };
  let rejectPending: ((error: Error) => void) | undefined;
  const onAbort = (event: Event) => rejectPending?.(abortError(event.target as AbortSignal));
  for (const signal of signals) signal.addEventListener('abort', onAbort, { once: true });
  return {
    next: () =>
      new Promise((resolve, reject) => {
        throwIfAborted(signals);
        rejectPending = reject;
        read().then(
          (chunk) => {
            rejectPending = undefined;
            resolve(chunk);
          },
          (err: unknown) => {
            rejectPending = undefined;
            reject(err);
          },
        );
      }),
    done: () => {
      rejectPending = undefined;
      for (const signal of signals) signal.removeEventListener('abort', onAbort);
    },
  };
}

function abortError(signal: AbortSignal): AbortedError {
  return signal.reason instanceof DisposedError
    ? new AbortedError('its scope was disposed', signal.reason)
    : new AbortedError('its signal was aborted', signal.reason);
}

function throwIfAborted(signals: readonly AbortSignal[]): void {
  const aborted = signals.find((signal) => signal.aborted);
  if (aborted) throw abortError(aborted);
}

function toWriteError(err: unknown, signals: readonly AbortSignal[], path: string | undefined): unknown {
  if (err instanceof TempFileError) return err;
  const aborted = signals.find((signal) => signal.aborted);
  if (aborted) return abortError(aborted);
  return path === undefined ? err : toFileSystemError('write', path, err);
}

// The name goes into tickets as '<algorithm>:<hex>', so it must fit their grammar too.
function isUsableHash(hash: unknown): hash is string {
  if (typeof hash !== 'string' || !/^[A-Za-z0-9-]{1,32}$/.test(hash)) return false;
  const wanted = hash.toLowerCase();
  return getHashes().some((name) => name.toLowerCase() === wanted);
}

function resolveWriteOptions(options: unknown): ResolvedWriteOptions {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError('options', 'write() options must be an object such as { suffix, maxBytes, signal }.');
  }
  for (const key of Object.keys(options)) {
    if (!WRITE_OPTIONS.has(key)) throw new InvalidOptionError(key, `Unknown write() option \`${key}\`.`);
  }
  const o = options as WriteOptions;
  if (o.maxBytes !== undefined && !(typeof o.maxBytes === 'number' && o.maxBytes >= 0 && !Number.isNaN(o.maxBytes))) {
    throw new InvalidOptionError('maxBytes', `\`maxBytes\` must be a number of at least 0, got ${describe(o.maxBytes)}.`);
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw new InvalidOptionError('signal', '`signal` must be an AbortSignal, e.g. AbortSignal.timeout(30_000).');
  }
  if (o.onProgress !== undefined && typeof o.onProgress !== 'function') {
    throw new InvalidOptionError('onProgress', '`onProgress` must be a function taking the bytes written so far.');
  }
  if (o.hash !== undefined && !isUsableHash(o.hash)) {
    throw new InvalidOptionError(
      'hash',
      `\`hash\` must be a hash algorithm of node:crypto such as 'sha256' (letters, digits and dashes, at most 32), got ${describe(o.hash)}.`,
    );
  }
  const name: NameOptions = { ...(o.prefix !== undefined && { prefix: o.prefix }), ...(o.suffix !== undefined && { suffix: o.suffix }) };
  return { name, maxBytes: o.maxBytes ?? Infinity, signals: o.signal ? [o.signal] : [], onProgress: o.onProgress, hash: o.hash };
}
