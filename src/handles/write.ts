import { CHANNELS, publish, traced, TRACING_CHANNELS } from '../base/channels.js';
import type { ManagerContext, Owner } from '../context/context.js';
import { createUniqueAsync, resolveNameParts, withSuffix, type NameOptions, type NameParts } from './create.js';
import {
  AbortedError,
  CallbackError,
  isErrorCode,
  isTempFileError,
  toFileSystemError,
  type DetectedType,
} from '../base/errors.js';
import { recordContent, reservationOf, type FileMaker, type TempFile } from './file.js';
import { CREATE_EXCLUSIVE } from '../disk/fs.js';
import { ownOptions, validateAbortSignal, validateBytes, validateFunction, validateObject, type NoneLeftOut } from '../base/validators.js';
import { hashOption } from '../write/options.js';
import { FileSink } from '../write/sink.js';
import { openWritable, type WritableFile } from '../write/open-file.js';
import { parseAccept } from '../write/sniff.js';
import { Meter, pump, sniffSource, type IntakeFacts } from '../write/intake.js';
import { openSource, type SourceReader, type WriteSource } from '../write/source.js';
import { resolveVerify, runVerify, type ResolvedVerify, type VerifyResult } from '../write/verify.js';
import { Stopper, type StopSource } from '../base/stopper.js';

/** Options of `write()`. */
export interface WriteOptions extends NameOptions {
  /** Refuse more than this many bytes: the source is stopped at the limit. @default Infinity */
  readonly maxBytes?: number;
  /** Aborts the write; the partial file is removed. */
  readonly signal?: AbortSignal;
  /** Called with the bytes on disk after each batch; if it throws, the write rejects with a {@link CallbackError}. */
  readonly onProgress?: (bytesWritten: number) => void;
  /** A `crypto` hash algorithm (`'sha256'`, ...): the digest is computed as the bytes stream by. */
  readonly hash?: string;
  /**
   * Refuse data whose first bytes (magic numbers) are of none of these types (`'image/png'`,
   * `'image/*'`, or `'*\/*'` for any): a `TypeNotAcceptedError` (415), nothing left on disk. The
   * type found is the file's `detectedType`; without `accept`, nothing is sniffed.
   * @example ['image/png', 'image/jpeg', 'application/pdf']
   */
  readonly accept?: readonly string[];
  /** Checks the whole file before `write()` resolves; only `true` accepts it (docs/streaming-writes.md, "Checking the file"). */
  readonly verify?: (file: TempFile, signal: AbortSignal) => VerifyResult | PromiseLike<VerifyResult>;
  /** How long `verify` may take (then a `VerifyFailedError`); 0: no bound but the write's `signal`. @default 60000 */
  readonly verifyTimeoutMs?: number;
}

interface ResolvedWriteOptions {
  /** `prefix` and `suffix` as given (undefined: neither), checked by resolveNameParts. */
  readonly name: NameOptions | undefined;
  readonly maxBytes: number;
  /** The caller's signal, and the owning scope's stopper (stopped when the scope is disposed). */
  readonly signals: readonly StopSource[];
  readonly onProgress: ((bytesWritten: number) => void) | undefined;
  readonly hash: string | undefined;
  readonly accept: readonly string[] | undefined;
  readonly verify: ResolvedVerify<TempFile> | undefined;
}

/** The names of `write()`'s options: every key of {@link WriteOptions}, and only those (`NoneLeftOut`). @internal */
export const WRITE_OPTION_KEYS = [
  'suffix',
  'prefix',
  'maxBytes',
  'signal',
  'onProgress',
  'hash',
  'accept',
  'verify',
  'verifyTimeoutMs',
] as const satisfies readonly (keyof WriteOptions)[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type WriteOptionsListed = NoneLeftOut<Exclude<keyof WriteOptions, (typeof WRITE_OPTION_KEYS)[number]>>;
const WRITE_OPTIONS: ReadonlySet<string> = new Set<string>(WRITE_OPTION_KEYS);

/** Names a file's suffix from the type sniffed from its first bytes (undefined: no known type). @internal */
export type SuffixOf = (type: DetectedType | undefined) => string;

/**
 * Streams `source` into a new temp file in constant memory. On any failure the source is
 * stopped, the partial file removed and its bytes released before the promise rejects. With
 * `suffixOf`, the data is sniffed before the file is made, and the file takes the suffix it names.
 * @internal
 */
export function writeTempFile<T extends TempFile>(
  context: ManagerContext,
  owner: Owner,
  source: WriteSource,
  options: WriteOptions | undefined,
  ownerSignal: StopSource | undefined,
  make: FileMaker<T>,
  suffixOf?: SuffixOf,
): Promise<T> {
  let resolved: ResolvedWriteOptions;
  try {
    resolved = resolveWriteOptions(options, ownerSignal);
  } catch (err) {
    return Promise.reject(err as Error); // refused before anything starts: no span, nothing touched
  }
  return traced(
    TRACING_CHANNELS.write,
    () => ({ root: context.root, maxBytes: resolved.maxBytes }),
    () => writeResolved(context, { owner, source, resolved, make, suffixOf }),
    (file) => ({ path: file.path, size: file.size ?? 0 }),
  );
}

/** A write whose options are checked: for whom, what, how, and how the file is made and named. */
interface WriteRequest<T extends TempFile> {
  readonly owner: Owner;
  readonly source: WriteSource;
  readonly resolved: ResolvedWriteOptions;
  readonly make: FileMaker<T>;
  readonly suffixOf: SuffixOf | undefined;
}

async function writeResolved<T extends TempFile>(context: ManagerContext, { owner, source, resolved, make, suffixOf }: WriteRequest<T>): Promise<T> {
  const parts = resolveNameParts(context, resolved.name); // a bad name is refused before anything touches the disk
  const reader = openSource(source);
  const read = abortable(reader, resolved.signals);
  const target = new NewFile(context, owner, make);
  try {
    throwIfAborted(resolved.signals);
    const meter = new Meter(resolved, context.freeSpace);
    // Sniffed before the file exists: a refused type leaves nothing on disk.
    const sniffed = resolved.accept || suffixOf ? await sniffSource(read.next, resolved.accept, meter) : { next: read.next, type: undefined };
    await meter.start();
    const sink = await target.open(suffixOf ? withSuffix(parts, suffixOf(sniffed.type)) : parts, meter);
    // The sink hashes and copies or writes each chunk before the next one is read: a source that
    // reuses its buffer gets exactly the bytes it yielded into the file and the digest.
    await pump(sniffed.next, meter, sink, resolved.onProgress);
    const file = await target.close({ size: meter.size, digest: meter.digest(), detectedType: sniffed.type });
    if (resolved.verify) await runVerify(resolved.verify, file, resolved.signals, abortError);
    return file;
  } catch (err) {
    reader.stop();
    await target.discard();
    throw toWriteError(err, resolved.signals, target.file?.path);
  } finally {
    read.done();
  }
}

/**
 * The file an intake fills on disk (`write()`'s, a spool's past its memory): made once its bytes
 * may go to disk, counted against from then on, closed with the intake's facts, and closed and
 * removed when the write fails.
 * @internal
 */
export class NewFile<T extends TempFile> {
  /** The file, once made. */
  file: T | undefined;
  private handle: WritableFile | undefined;

  constructor(
    private readonly context: ManagerContext,
    private readonly owner: Owner,
    private readonly make: FileMaker<T>,
  ) {}

  /**
   * Makes the file `name` names (0600, `O_EXCL`, in the session) and returns the sink that fills
   * it; `meter` counts against the file from now on, the bytes it counted so far included.
   */
  async open(name: NameParts, meter: Meter): Promise<FileSink> {
    const { context } = this;
    const created = await createUniqueAsync(context, name, 'file', (access) => openWritable(access, CREATE_EXCLUSIVE, 0o600, context.localDisk()));
    this.handle = created.result;
    const file = this.make(context, this.owner, created.path, created.access, created.suffix, this.handle.identity);
    this.file = file;
    publish(CHANNELS.fileCreate, () => ({ root: context.root, path: created.path, kind: 'file', by: 'write' }));
    meter.chargeTo(reservationOf(file));
    return new FileSink(this.handle, file.path, meter.hash, context.localDisk() !== undefined);
  }

  /** Records what the intake established (once every byte is stored) and closes the file. */
  async close(facts: IntakeFacts): Promise<T> {
    const file = this.file!;
    recordContent(file, facts);
    const closing = this.handle!;
    this.handle = undefined;
    await closing.close();
    return file;
  }

  /** After a failure: closes and removes what was made, if anything was. */
  async discard(): Promise<void> {
    await this.handle?.close().catch(() => {});
    await this.file?.remove().catch(() => {});
  }
}

/**
 * `reader.next()`, stopped by the abort signals (the caller's and the scope's): when one aborts,
 * the reader is stopped with its {@link abortError}, which rejects the read then pending and
 * every read after it (a reader's `stop()` settles its pending read: `openSource()`). No promise
 * more per chunk: this is every write's read loop. Each write subscribes to each signal through
 * {@link onAbort}, which keeps one listener per signal however many writes share it (a scope's, a
 * caller's `AbortSignal.timeout()`): 11 writes in one scope each adding their own listener printed
 * MaxListenersExceededWarning. `done()` unsubscribes it.
 */
export function abortable(reader: SourceReader, signals: readonly StopSource[]): { next(): Promise<Buffer | undefined>; done(): void } {
  if (signals.length === 0) return { next: reader.next, done: () => {} };
  const aborted = signals.find((signal) => signal.aborted);
  if (aborted) reader.stop(abortError(aborted));
  const unsubscribe = aborted ? [] : signals.map((signal) => onAbort(signal, () => reader.stop(abortError(signal))));
  return {
    next: reader.next,
    done: () => {
      for (const off of unsubscribe) off();
    },
  };
}

/** The writes waiting on each signal: its one 'abort' listener calls them all. */
const waiting = new WeakMap<StopSource, { readonly callbacks: Set<() => void>; readonly listener: () => void }>();

/**
 * Calls `callback` once when `signal` aborts; returns the unsubscribe. One 'abort' listener per
 * signal fans out to every subscriber, and goes once the last one unsubscribes.
 */
function onAbort(signal: StopSource, callback: () => void): () => void {
  if (signal instanceof Stopper) {
    // Its own list, in no WeakMap: a WeakMap's value lives through every collection of the young
    // generation while its key (a scope's stopper) lives, and would take each write it waits on
    // to the old one (bench/analyses/uploads.md).
    signal.addEventListener('abort', callback);
    return () => signal.removeEventListener('abort', callback);
  }
  const { callbacks, listener } = waiting.get(signal) ?? listenTo(signal);
  callbacks.add(callback);
  return () => {
    if (!callbacks.delete(callback) || callbacks.size > 0) return;
    if (waiting.get(signal)?.callbacks === callbacks) waiting.delete(signal);
    signal.removeEventListener('abort', listener);
  };
}

/**
 * The signal's one 'abort' listener and its subscribers. Apart from {@link onAbort}: a listener
 * made there would keep that call's context, and with it the first subscriber's write (its
 * reader, its source) for as long as any later write waits on the signal.
 */
function listenTo(signal: StopSource): { readonly callbacks: Set<() => void>; readonly listener: () => void } {
  const callbacks = new Set<() => void>();
  const listener = () => {
    waiting.delete(signal);
    for (const call of [...callbacks]) call();
  };
  const entry = { callbacks, listener };
  waiting.set(signal, entry);
  signal.addEventListener('abort', listener, { once: true });
  return entry;
}

/** The {@link AbortedError} of an aborted signal: the scope's disposal, or the caller's signal. @internal */
export function abortError(signal: StopSource): AbortedError {
  return isErrorCode(signal.reason, 'ERR_TEMPFILE_DISPOSED')
    ? new AbortedError('its scope was disposed', signal.reason)
    : new AbortedError('its signal was aborted', signal.reason);
}

export function throwIfAborted(signals: readonly StopSource[]): void {
  const aborted = signals.find((signal) => signal.aborted);
  if (aborted) throw abortError(aborted);
}

export function toWriteError(err: unknown, signals: readonly StopSource[], path: string | undefined): unknown {
  if (isTempFileError(err)) return err;
  const aborted = signals.find((signal) => signal.aborted);
  if (aborted) return abortError(aborted);
  return path === undefined ? err : toFileSystemError('write', path, err);
}

/** The checked options of a write; `ownerSignal` (the owning scope's) joins the caller's signal. */
export function resolveWriteOptions(options: unknown, ownerSignal?: StopSource): ResolvedWriteOptions {
  validateObject(options, 'write()', WRITE_OPTIONS, '{ suffix, maxBytes, signal }');
  const o = ownOptions(options as WriteOptions | undefined);
  const maxBytes = o.maxBytes === undefined ? Infinity : validateBytes(o.maxBytes, 'maxBytes', { infinity: true });
  const signals: StopSource[] = o.signal === undefined ? [] : [validateAbortSignal(o.signal, 'signal')];
  if (ownerSignal) signals.push(ownerSignal);
  const onProgress = o.onProgress === undefined ? undefined : validateFunction<(bytes: number) => void>(o.onProgress, 'onProgress', 'taking the bytes written so far');
  const hash = o.hash === undefined ? undefined : hashOption(o.hash);
  const accept = o.accept === undefined ? undefined : parseAccept(o.accept);
  const verify = resolveVerify<TempFile>(o.verify, o.verifyTimeoutMs, 'write()');
  const name = o.prefix === undefined && o.suffix === undefined ? undefined : { prefix: o.prefix, suffix: o.suffix };
  return { name, maxBytes, signals, onProgress, hash, accept, verify };
}
