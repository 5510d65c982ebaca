import type { Readable } from 'node:stream';
import { InvalidOptionError } from '../base/errors.js';
import { describe } from '../base/names.js';
import type { HandoffStore } from '../base/stores.js';
import { ownOptions, validateBytes, validateObject, type NoneLeftOut } from '../base/validators.js';
import type { StoreBackend, StreamHandOffRequest } from '../handoff/backend.js';
import { checkHandoffOptions, type HandoffOptions } from '../handoff/handoff.js';
import type { WriteOptions } from '../handles/write.js';
import { hashOption } from '../write/options.js';
import { parseAccept } from '../write/sniff.js';

/** Options of `mgr.handoffStream()`: `handoff()`'s with `store` required, and `write()`'s limits (`hash` `'sha256'` by default). */
export type StreamHandoffOptions = HandoffOptions &
  Pick<WriteOptions, 'maxBytes' | 'accept' | 'hash'> & {
    /** The object store (`s3Store()`). */
    readonly store: HandoffStore;
  };

/** The options of a stream's handoff, checked, with the store they name. @internal */
export interface CheckedStreamHandoff {
  readonly store: StoreBackend;
  readonly request: Omit<StreamHandOffRequest, 'suffixOf'>;
}

/** The names of `handoffStream()`'s options: every key of {@link StreamHandoffOptions} (`NoneLeftOut`). */
const STREAM_HANDOFF_OPTION_KEYS = ['store', 'ttlMs', 'meta', 'maxBytes', 'accept', 'hash'] as const satisfies readonly (keyof StreamHandoffOptions)[];
/** Compiles only while every option is listed (`NoneLeftOut`). @internal */
export type StreamHandoffOptionsListed = NoneLeftOut<Exclude<keyof StreamHandoffOptions, (typeof STREAM_HANDOFF_OPTION_KEYS)[number]>>;
const STREAM_OPTIONS: ReadonlySet<string> = new Set<string>(STREAM_HANDOFF_OPTION_KEYS);

/**
 * Checks the options of a stream's handoff (`where` starts the messages): `store` required, the
 * rest as `handoff()`, `write()` and the uploads check them. @internal
 */
export function checkStreamHandoffOptions(options: unknown, where: string): CheckedStreamHandoff {
  validateObject(options, where, STREAM_OPTIONS, '{ store, ttlMs: 3_600_000 }');
  const own = ownOptions((options ?? {}) as Partial<StreamHandoffOptions>);
  if (own.store === undefined) {
    throw new InvalidOptionError('store', `${where} needs \`store\`, the object store the bytes go to, such as { store: s3Store({ client, bucket }), ttlMs: 3_600_000 }; got undefined.`);
  }
  const { ttlMs, meta, store } = checkHandoffOptions({ ttlMs: own.ttlMs, store: own.store, ...(own.meta !== undefined && { meta: own.meta }) });
  const maxBytes = own.maxBytes === undefined ? Infinity : validateBytes(own.maxBytes, 'maxBytes', { where, infinity: true });
  const accept = own.accept === undefined ? undefined : parseAccept(own.accept);
  const hash = own.hash === undefined ? 'sha256' : hashOption(own.hash, `${where}: `);
  return { store: store!, request: { ttlMs, meta, maxBytes, accept, hash } };
}

/** Checks that `source` is a readable stream. @internal */
export function checkStreamSource(source: unknown, where: string): Readable {
  const candidate = source as Partial<Readable> | null | undefined;
  if (typeof candidate?.[Symbol.asyncIterator] === 'function' && typeof candidate.destroy === 'function') return source as Readable;
  throw new InvalidOptionError('source', `${where} takes a readable stream (a request, fs.createReadStream(), a Readable), got ${describe(source)}.`);
}
