import { InvalidNameError } from './errors.js';
import { MAX_NAME_BYTES, MAX_SUFFIX_BYTES } from './layout.js';
import { RANDOM_NAME_LENGTH } from './random-name.js';
import { endsAsWindowsStrips, reservedDeviceOf } from './windows-names.js';

// Separators of every platform (POSIX `/`, Windows `\` and drive `:`), NUL, C0 and C1 controls,
// DEL, the characters Windows refuses in names, and invisible format characters (bidi overrides
// such as U+202E, zero-width spaces, line and paragraph separators) that make a name read as
// another.
// eslint-disable-next-line no-control-regex
const FORBIDDEN_CHARACTERS = /[/\\:\u0000-\u001f\u007f-\u009f<>"|?*\p{Cf}\p{Zl}\p{Zp}]/u;
/** ASCII letters, digits, dots, dashes and underscores only: most prefixes and suffixes (`.pdf`, `upload-`). */
const PLAIN_NAME = /^[A-Za-z0-9._-]*$/;

/**
 * Checks that `value` can be part of a single file name. Runs before anything touches the disk.
 * The NFKC form is checked too, since characters such as U+2024 or U+FF0F turn into `.` or `/`
 * on systems that normalise names.
 */
export function validateNamePart(value: unknown, what: 'prefix' | 'suffix'): string {
  if (typeof value !== 'string') {
    throw new InvalidNameError(
      `The ${what} must be a string, got ${describe(value)}. Pass a plain string such as ${
        what === 'suffix' ? "'.pdf'" : "'upload-'"
      }.`,
    );
  }
  // A plain name is its own NFKC form and holds no forbidden character: only the rules on its
  // shape are left to check.
  if (PLAIN_NAME.test(value)) {
    checkShape(value, value, what);
    return value;
  }
  if (!value.isWellFormed()) {
    throw new InvalidNameError(`The ${what} ${JSON.stringify(value)} holds a lone surrogate: pass well-formed text.`);
  }
  for (const form of new Set([value, value.normalize('NFKC')])) {
    if (FORBIDDEN_CHARACTERS.test(form)) {
      throw new InvalidNameError(
        `The ${what} ${JSON.stringify(value)} contains a path separator, a control character or a character ` +
          'that is not allowed in file names: use letters, digits, dots, dashes and underscores.',
      );
    }
    checkShape(value, form, what);
  }
  return value;
}

/** The rules on a name's shape, for `form`, one form of `value`: no `..`, nothing Windows reads as another name. */
function checkShape(value: string, form: string, what: 'prefix' | 'suffix'): void {
  if (form.includes('..')) {
    throw new InvalidNameError(`The ${what} ${JSON.stringify(value)} contains "..": remove it.`);
  }
  refuseWindowsReading(value, form, what);
}

/**
 * The names the library makes must mean the same on every host that may share a root, Windows
 * included: a prefix whose part before a dot is a device name (`aux.` makes `aux.<random>`, which
 * opens the AUX device), and a suffix ending with a dot or a space, which Windows strips (the file
 * would take another name). A prefix without a dot is always followed by the random part.
 */
function refuseWindowsReading(value: string, form: string, what: 'prefix' | 'suffix'): void {
  const device = what === 'prefix' && form.includes('.') ? reservedDeviceOf(form) : undefined;
  if (device !== undefined) {
    throw new InvalidNameError(
      `The prefix ${JSON.stringify(value)} starts a file name Windows reserves for a device (${device}), even with an ` +
        `extension: choose another prefix, such as ${JSON.stringify(`${device.toLowerCase()}-`)}.`,
    );
  }
  if (what === 'suffix' && endsAsWindowsStrips(form)) {
    throw new InvalidNameError(
      `The suffix ${JSON.stringify(value)} ends with a dot or a space, which Windows strips from file names (the file ` +
        'would take another name there): remove the trailing dots and spaces.',
    );
  }
}

/**
 * Throws when `prefix + random + suffix` would exceed the file-name limit, or when the suffix is
 * longer than a handed-off file's held name can carry ({@link MAX_SUFFIX_BYTES}).
 */
export function validateNameLength(prefix: string, suffix: string): void {
  const suffixBytes = Buffer.byteLength(suffix);
  if (suffixBytes > MAX_SUFFIX_BYTES) {
    throw new InvalidNameError(
      `The suffix is ${suffixBytes} bytes long, more than the ${MAX_SUFFIX_BYTES} a file can carry through a handoff: shorten it.`,
    );
  }
  const bytes = Buffer.byteLength(prefix) + RANDOM_NAME_LENGTH + suffixBytes;
  if (bytes > MAX_NAME_BYTES) {
    throw new InvalidNameError(
      `The name would be ${bytes} bytes long, more than the ${MAX_NAME_BYTES} a file system allows: ` +
        `shorten the prefix and suffix to ${MAX_NAME_BYTES - RANDOM_NAME_LENGTH} bytes together.`,
    );
  }
}

/** The most characters of a string value an error message shows. */
const SHOWN_CHARACTERS = 40;

/**
 * A short, safe rendering of a value for error messages: a number, boolean, `null` or `undefined`
 * as written, a string quoted and escaped (cut to 40 characters, with its length), anything else
 * by its kind (`an array of 2`, `a Buffer`, `an object`, `a function`).
 */
export function describe(value: unknown): string {
  switch (typeof value) {
    case 'undefined':
    case 'boolean':
      return String(value);
    case 'number':
      return Object.is(value, -0) ? '-0' : String(value);
    case 'bigint':
      return `${value}n`;
    case 'string':
      return value.length > SHOWN_CHARACTERS
        ? `${JSON.stringify(value.slice(0, SHOWN_CHARACTERS))}… (${value.length} characters)`
        : JSON.stringify(value);
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
    default:
      break;
  }
  if (value === null) return 'null';
  if (Array.isArray(value)) return value.length === 0 ? 'an empty array' : `an array of ${value.length}`;
  if (Buffer.isBuffer(value)) return 'a Buffer';
  return 'an object';
}

/** The known name closest to `name` (a typo, another case, a missing dash), if one is close. */
export function closestName(name: string, known: Iterable<string>): string | undefined {
  const plain = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    const distance = plain(candidate) === plain(name) ? 0 : editDistance(plain(name), plain(candidate));
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best !== undefined && bestDistance <= Math.max(1, Math.floor(name.length / 4)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = row;
  }
  return previous[b.length]!;
}
