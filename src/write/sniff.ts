import { InvalidOptionError, TypeNotAcceptedError, type DetectedType } from '../base/errors.js';
import { detached } from '../base/detached.js';
import { describe } from '../base/names.js';

/** The bytes the sniffer looks at: file-type finds most types within its first 4100. */
export const SNIFF_BYTES = 4100;

// A MIME type as RFC 6838 names them (type and subtype of restricted-name characters), or a
// `type/*` pattern, or `*/*`.
const NAME = "[a-z0-9][a-z0-9!#$&^_.+-]{0,126}";
const PATTERN = new RegExp(`^(?:\\*/\\*|${NAME}/(?:\\*|${NAME}))$`);

/** Validates `accept` and returns its patterns in lower case. */
export function parseAccept(accept: unknown): readonly string[] {
  if (!Array.isArray(accept) || accept.length === 0) {
    throw new InvalidOptionError(
      'accept',
      `\`accept\` must be a non-empty array of MIME types or patterns such as ['image/png', 'video/*'], got ${describe(accept)}.`,
    );
  }
  return accept.map((pattern: unknown) => {
    const lower = typeof pattern === 'string' ? pattern.toLowerCase() : undefined;
    if (lower === undefined || !PATTERN.test(lower)) {
      throw new InvalidOptionError(
        'accept',
        `\`accept\` holds ${describe(pattern)}, which is not a MIME type ('image/png'), a 'type/*' pattern ('image/*') or '*/*'` +
          (typeof pattern === 'string' && /^\.?[a-z0-9]+$/i.test(pattern)
            ? ": give MIME types, not file extensions ('image/png', not 'png')."
            : '.'),
      );
    }
    return lower;
  });
}

/** Whether `detected` (undefined: no known type) fits one of the patterns; only `*\/*` takes an unknown type. */
export function isAccepted(patterns: readonly string[], detected: DetectedType | undefined): boolean {
  return patterns.some((pattern) => {
    if (pattern === '*/*') return true;
    if (!detected) return false;
    const mime = detected.mime.toLowerCase();
    return pattern.endsWith('/*') ? mime.startsWith(pattern.slice(0, -1)) : mime === pattern;
  });
}

/** Throws {@link TypeNotAcceptedError} unless `detected` fits `patterns`. */
export function assertAccepted(patterns: readonly string[], detected: DetectedType | undefined): void {
  if (!isAccepted(patterns, detected)) throw new TypeNotAcceptedError(detected, patterns);
}

type FileTypeCore = typeof import('file-type/core');
let sniffer: Promise<FileTypeCore> | undefined;

// file-type is ESM only: a dynamic import loads it from the CommonJS build too, on the first
// write that asks for a type and never before.
function loadSniffer(): Promise<FileTypeCore> {
  // Kept for the process's life, as are the module loader's own promises: made outside the
  // caller's async context, which they would keep alive.
  sniffer ??= detached(() =>
    import('file-type/core').catch((err: unknown) => {
      sniffer = undefined;
      throw err;
    }),
  );
  return sniffer;
}

// Parsers idle between detections. Making one costs more than a detection does (its detectors
// are closures of each instance), but a parser holds its detection's state: each detection in
// flight has one of its own, and one that failed is not used again.
const idleParsers: InstanceType<FileTypeCore['FileTypeParser']>[] = [];
const MAX_IDLE_PARSERS = 16;

/** The type of the data that starts with `head`, from its magic bytes; undefined when none is known. */
export async function detectType(head: Uint8Array): Promise<DetectedType | undefined> {
  const { FileTypeParser } = await loadSniffer();
  const parser = idleParsers.pop() ?? new FileTypeParser();
  let found: Awaited<ReturnType<typeof parser.fromBuffer>>;
  try {
    // A pooled parser outlives this call: what it keeps is made outside the caller's async context.
    found = await detached(() => parser.fromBuffer(head));
  } catch {
    return undefined; // a header the parser chokes on is no known type
  }
  if (idleParsers.length < MAX_IDLE_PARSERS) idleParsers.push(parser);
  return found && { mime: found.mime, ext: found.ext };
}

/** The first chunks of a source, read to sniff its type, to be written before the rest. */
export interface SourceHead {
  /** The chunks read, in order: the ones before the window's end copied into one buffer, the last as given. */
  readonly chunks: readonly Buffer[];
  /** Up to {@link SNIFF_BYTES} first bytes, a copy of its own. */
  readonly sample: Buffer;
}

/**
 * Reads until {@link SNIFF_BYTES} are in or the source ends. Chunks before the window's end are
 * copied (the source may reuse its buffer once asked for the next chunk); the chunk that fills the
 * window is kept as given: nothing is read again before it is written. `within` is called with
 * the bytes read so far before each chunk is kept, and throws to refuse them (the intake's limits).
 */
export async function readHead(next: () => Promise<Buffer | undefined>, within: (bytes: number) => void): Promise<SourceHead> {
  const copied = Buffer.allocUnsafe(SNIFF_BYTES);
  let used = 0;
  for (let chunk = await next(); chunk !== undefined; chunk = await next()) {
    within(used + chunk.length);
    if (used + chunk.length < SNIFF_BYTES) {
      used += chunk.copy(copied, used);
      continue;
    }
    const before = copied.subarray(0, used);
    const sample = Buffer.concat([before, chunk.subarray(0, SNIFF_BYTES - used)]);
    return { chunks: used > 0 ? [before, chunk] : [chunk], sample };
  }
  const all = copied.subarray(0, used);
  return { chunks: used > 0 ? [all] : [], sample: all };
}
