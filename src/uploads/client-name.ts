import type { DetectedType } from '../base/errors.js';
import { MAX_META_BYTES, type HandoffMeta } from '../handoff/ticket.js';
import { cutToBytes } from '../base/layout.js';
import { validateNameLength, validateNamePart } from '../base/names.js';
import { ownOptions } from '../base/validators.js';

/** The most bytes of a client's file name kept: a file name's limit on most file systems. */
const MAX_CLIENT_NAME_BYTES = 255;

/** An extension taken as a suffix: letters and digits only, at most 16 of them. */
const SAFE_EXTENSION = /^[a-z0-9]{1,16}$/;

// Controls (C0, DEL, C1), invisible format characters (bidi overrides, zero-width), line and
// paragraph separators, slashes, and what Windows refuses in names: each becomes `_`.
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARACTER = /[\u0000-\u001f\u007f-\u009f<>:"|?*\p{Cf}\p{Zl}\p{Zp}/\\]/u;

// Slashes that are no path separator here but look like one, or become one where a name is
// normalised to NFKC (which also turns `／` into `/` and `℀` into `a/c`: see isUnsafeCharacter).
const SLASH_LOOKALIKES = /[\u2044\u2215\u2216\u27cb\u27cd\u29f8\u29f9]/u;

/**
 * Names Windows keeps for devices, with or without an extension (`CON`, `com1.txt`), and with
 * spaces before it (`con .txt`), which Windows drops.
 */
const WINDOWS_DEVICE = /^(?:con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³]|conin\$|conout\$)\s*(?:\.|$)/iu;

/** An extension kept whole when a long name is cut: a dot and at most this many bytes after it. */
const MAX_KEPT_EXTENSION_BYTES = 32;

/**
 * The client's file name, made safe to show and to store (a ticket's `meta.filename`): only its
 * last path segment (after `/` or `\`), well-formed text in NFC, controls, characters Windows
 * refuses and characters that are or become a slash under NFKC (`／`, `∕`, `℀`) turned into `_`,
 * no leading dots or spaces nor trailing ones, a Windows device name (`CON`, `LPT1.txt`,
 * `con .txt`) given a leading `_`, at most 255 bytes of UTF-8 (a longer name loses the end of its
 * stem, not its extension). Undefined when nothing is left (`..`, `/`, an empty name). It is never
 * a path of this library: files are named by it.
 * @internal
 */
export function clientFileName(originalName: string): string | undefined {
  const lastSegment = originalName.toWellFormed().split(/[/\\]/).pop() ?? '';
  const ascii = PRINTABLE_ASCII.test(lastSegment);
  const cleaned = replaceUnsafe(ascii ? lastSegment : lastSegment.normalize('NFC')).replace(/^[\s.]+|[\s.]+$/gu, '');
  if (cleaned === '') return undefined;
  const named = WINDOWS_DEVICE.test(ascii ? cleaned : cleaned.normalize('NFKC')) ? `_${cleaned}` : cleaned;
  return cutKeepingExtension(named);
}

// Printable ASCII is its own NFC and NFKC, and none of it looks like a slash: only the
// characters Windows refuses and the two slashes need replacing there (most names, quickly).
const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;
const UNSAFE_ASCII = /[<>:"|?*/\\]/g;

function replaceUnsafe(name: string): string {
  if (PRINTABLE_ASCII.test(name)) return name.replace(UNSAFE_ASCII, '_');
  return Array.from(name, (character) => (isUnsafeCharacter(character) ? '_' : character)).join('');
}

// Judged as written and as NFKC makes it: a name shown or stored elsewhere may be normalised.
function isUnsafeCharacter(character: string): boolean {
  if (SLASH_LOOKALIKES.test(character)) return true;
  const normalised = character.normalize('NFKC');
  return UNSAFE_CHARACTER.test(character) || UNSAFE_CHARACTER.test(normalised);
}

/** At most 255 bytes: the stem is cut, never inside a character, and a short extension stays. */
function cutKeepingExtension(name: string): string {
  if (Buffer.byteLength(name) <= MAX_CLIENT_NAME_BYTES) return name;
  const dot = name.lastIndexOf('.');
  const extension = dot > 0 ? name.slice(dot) : '';
  const kept = Buffer.byteLength(extension) <= MAX_KEPT_EXTENSION_BYTES + 1 ? extension : '';
  const stem = kept === '' ? name : name.slice(0, dot);
  return cutToBytes(stem, MAX_CLIENT_NAME_BYTES - Buffer.byteLength(kept)).replace(/[\s.]+$/u, '') + kept;
}

/**
 * The suffix an uploaded file is created with: the extension of the type found from its bytes
 * (`.png`), else the extension of the client's file name when it is letters and digits only
 * (`report.csv`: `.csv`, lower-cased), else none. Always a valid suffix for `write()`.
 * @internal
 */
export function uploadSuffix(detected: DetectedType | undefined, originalName: string): string {
  const fromType = detected?.ext.toLowerCase();
  if (fromType !== undefined && SAFE_EXTENSION.test(fromType)) return checked(`.${fromType}`);
  const name = clientFileName(originalName);
  const dot = name?.lastIndexOf('.') ?? -1;
  const fromName = dot > 0 ? name!.slice(dot + 1).toLowerCase() : '';
  return SAFE_EXTENSION.test(fromName) ? checked(`.${fromName}`) : '';
}

/** `suffix` when the name rules take it (they always should: the pattern is narrower), else none. */
function checked(suffix: string): string {
  try {
    validateNamePart(suffix, 'suffix');
    validateNameLength('', suffix);
    return suffix;
  } catch {
    return '';
  }
}

/**
 * `handoff()`'s options with the client's file name in `meta.filename`, unless the caller set
 * `meta.filename`, gave options that are not a plain object (the core refuses those with its own
 * message), or the name would take `meta` past its 4 KiB.
 * @internal
 */
export function withClientName<T>(options: T, filename: string | undefined): T {
  if (filename === undefined || typeof options !== 'object' || options === null || Array.isArray(options)) return options;
  const meta: unknown = ownOptions(options as { meta?: unknown }).meta;
  if (meta !== undefined && (typeof meta !== 'object' || meta === null || Array.isArray(meta))) return options;
  if (meta !== undefined && 'filename' in ownOptions(meta)) return options;
  const named: HandoffMeta = { filename, ...(meta as HandoffMeta | undefined) };
  return fitsMeta(named) ? { ...options, meta: named } : options;
}

/** Whether `meta` is JSON of at most 4 KiB (else the caller's own meta is left for the core to judge). */
function fitsMeta(meta: HandoffMeta): boolean {
  try {
    return Buffer.byteLength(JSON.stringify(meta)) <= MAX_META_BYTES;
  } catch {
    return false; // a cycle or a BigInt of the caller's
  }
}
