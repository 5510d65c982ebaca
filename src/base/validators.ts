// The checks of every option and argument of the API, in Node.js's vocabulary
// (lib/internal/validators.js): each takes the value and the option's name, returns the value when
// it is good, and otherwise throws an InvalidOptionError whose message names the option, shows the
// value and says what is accepted: `<where>: \`<name>\` must be <accepted>, got <value>.`
import { InvalidOptionError } from './errors.js';
import { closestName, describe } from './names.js';

/** How a message names the check's subject. @internal */
export interface Subject {
  /** The call the message starts with, such as `'sweep()'`; none for the manager's own options. */
  readonly where?: string | undefined;
  /** How the message names the option, such as `'\`drain.maxBytes\`'`: the name in backticks unless given. */
  readonly label?: string | undefined;
  /** How the value is shown: `describe()` unless given. */
  readonly show?: ((value: unknown) => string) | undefined;
}

/** The bounds of a number, both included. @internal */
export interface NumberRange extends Subject {
  readonly min: number;
  readonly max?: number;
  /** Infinity is taken too (no limit). */
  readonly infinity?: boolean;
  /** What the number counts, as in "a whole number of bytes". */
  readonly unit?: string;
  /** Said after the bounds, such as `'(5 MiB)'` or `'(a byte offset)'`. */
  readonly note?: string;
}

/** The longest delay a Node.js timer takes: a longer one fires at once. @internal */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The whole numbers of milliseconds a duration may take, both ends included. @internal */
export interface DurationRange {
  readonly min: number;
  readonly max: number;
  /** A value outside `min`..`max` that is accepted too, and what it means (e.g. 0: never). */
  readonly off?: { readonly value: number; readonly meaning: string };
}

// An object whose one prototype is empty and has none itself: no name is inherited from a polluted
// Object.prototype, and, unlike `Object.create(null)`, V8 keeps its properties in fast mode.
const OwnOptions = function OwnOptions() {} as unknown as new () => object;
OwnOptions.prototype = Object.create(null) as object;

/**
 * The own enumerable properties of an options object, on an object that inherits nothing: the one way every
 * reader takes an option, so that one inherited from a polluted `Object.prototype` is never
 * obeyed, and a getter is read once. `undefined`, `null` and a primitive give an empty object.
 * @internal
 */
export function ownOptions<T extends object>(options: T | undefined): Partial<T> {
  const own = new OwnOptions() as Partial<T>;
  if (typeof options !== 'object' || options === null) return own;
  for (const key of Object.keys(options) as (keyof T)[]) own[key] = options[key];
  return own;
}

/**
 * Compiles only when `Left` is `never`. An entry point lists its option names once, as
 * `const KEYS = [...] as const satisfies readonly (keyof Options)[]` (no name its type lacks), and
 * states `type Listed = NoneLeftOut<Exclude<keyof Options, (typeof KEYS)[number]>>` (no key of its
 * type left out: the error names the keys missing); its runtime check takes `new Set(KEYS)`. So the
 * names the type declares and the names the check takes cannot drift apart.
 * @internal
 */
export type NoneLeftOut<Left extends never> = Left;

/**
 * The one check of an options argument, for every call that takes one: it must be an object
 * (`undefined` is taken as none), and each of its names one of `known`. A bad argument is an
 * {@link InvalidOptionError} showing it and an example (`example`); an unknown name one that names
 * it, suggests the closest known name and lists them all. `show` shows the bad argument.
 * @internal
 */
export function validateObject(options: unknown, where: string, known: ReadonlySet<string>, example: string, show = describe): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new InvalidOptionError('options', `${where} takes an options object such as ${example}, got ${show(options)}.`);
  }
  for (const key of Object.keys(options)) {
    if (known.has(key)) continue;
    const near = closestName(key, known);
    throw new InvalidOptionError(
      key,
      `${where}: unknown option \`${key}\`${near ? ` (did you mean \`${near}\`?)` : ''}. ` +
        `The options are: ${[...known].filter((name) => name !== 'fs').map((name) => `\`${name}\``).join(', ')}.`,
    );
  }
}

/**
 * A number from `min` to `max` (Infinity too when `infinity`); never NaN.
 * @throws {@link InvalidOptionError} naming `name` otherwise.
 */
function validateNumber(value: unknown, name: string, range: NumberRange): number {
  const ok = typeof value === 'number' && value >= range.min && (Number.isFinite(value) ? value <= (range.max ?? Infinity) : range.infinity === true && value === Infinity);
  if (ok) return value;
  return refuse(value, name, `a number${of(range.unit)} ${bounds(range)}`, range);
}

/**
 * A whole number (a safe integer) from `min` to `max`, or Infinity when `infinity`.
 * @throws {@link InvalidOptionError} naming `name` otherwise.
 * @internal
 */
export function validateInteger(value: unknown, name: string, range: NumberRange): number {
  const whole = typeof value === 'number' && (Number.isSafeInteger(value) || (range.infinity === true && value === Infinity));
  if (whole && value >= range.min && (value === Infinity || value <= (range.max ?? Infinity))) return value;
  return refuse(value, name, `a whole number${of(range.unit)} ${bounds(range)}`, range);
}

/**
 * A size in bytes of at least `min` (0 unless given): Infinity means no limit when `infinity`.
 * @throws {@link InvalidOptionError} naming `name` otherwise.
 * @internal
 */
export function validateBytes(value: unknown, name: string, range: Subject & { readonly min?: number; readonly infinity?: boolean } = {}): number {
  return validateNumber(value, name, { ...range, min: range.min ?? 0, unit: 'bytes', ...(range.infinity && { note: '(or Infinity, no limit)', infinity: true }) });
}

/**
 * A duration, the one rule for every duration of the API and the CLI: a whole number of
 * milliseconds within `range` (or its `off` value).
 * @throws {@link InvalidOptionError} naming `name` otherwise.
 * @internal
 */
export function validateDuration(value: unknown, name: string, range: DurationRange, subject: Subject = {}): number {
  const ok = typeof value === 'number' && Number.isSafeInteger(value) && ((value >= range.min && value <= range.max) || value === range.off?.value);
  if (ok) return value;
  const accepted = `${range.off ? `${range.off.value} (${range.off.meaning}) or ` : ''}from ${range.min} to ${range.max}`;
  return refuse(value, name, `a whole number of milliseconds ${accepted}`, subject);
}

/**
 * `true` or `false`.
 * @throws {@link InvalidOptionError} naming `name` otherwise.
 * @internal
 */
export function validateBoolean(value: unknown, name: string, subject: Subject = {}): boolean {
  if (typeof value === 'boolean') return value;
  return refuse(value, name, 'true or false', subject);
}

/**
 * A function; `what` says what it takes or shows one (`'taking the bytes written so far'`).
 * @throws {@link InvalidOptionError} naming `name` otherwise.
 * @internal
 */
export function validateFunction<F extends (...args: never[]) => unknown>(value: unknown, name: string, what: string, subject: Subject = {}): F {
  if (typeof value === 'function') return value as F;
  return refuse(value, name, `a function ${what}`, subject);
}

/**
 * The callback argument of a call such as `withScope()`: `example` shows one it takes. Checked
 * before anything is done, so a bad callback never opens a scope or claims a ticket.
 * @throws {@link InvalidOptionError} (option `fn`) otherwise.
 * @internal
 */
export function validateCallback<F extends (...args: never[]) => unknown>(fn: unknown, call: string, example: string): F {
  if (typeof fn === 'function') return fn as F;
  throw new InvalidOptionError('fn', `${call} takes a function as its callback, such as ${example}; got ${describeArgument(fn)}.`);
}

/**
 * An AbortSignal.
 * @throws {@link InvalidOptionError} naming `name` otherwise.
 * @internal
 */
export function validateAbortSignal(value: unknown, name: string, subject: Subject = {}): AbortSignal {
  if (value instanceof AbortSignal) return value;
  return refuse(value, name, 'an AbortSignal, e.g. AbortSignal.timeout(30_000)', subject);
}

/**
 * One of `allowed`; `accepted` says what each means.
 * @throws {@link InvalidOptionError} naming `name` otherwise.
 * @internal
 */
export function validateOneOf<T>(value: unknown, name: string, allowed: readonly T[], accepted: string, subject: Subject = {}): T {
  if (allowed.includes(value as T)) return value as T;
  return refuse(value, name, accepted, subject);
}

/**
 * A value shown as an argument's type and value: `the number 5`, `a string ("utf8")`, as a
 * positional argument of the wrong type is more often a mistaken type than a mistaken value.
 * @internal
 */
export function describeArgument(value: unknown): string {
  if (typeof value === 'number') return `the number ${value}`;
  if (typeof value === 'string') return `a string (${JSON.stringify(value.slice(0, 40))})`;
  return describe(value);
}

function refuse(value: unknown, name: string, accepted: string, subject: Subject): never {
  const shown = (subject.show ?? describe)(value);
  throw new InvalidOptionError(name, `${subject.where ? `${subject.where}: ` : ''}${subject.label ?? `\`${name}\``} must be ${accepted}, got ${shown}.`);
}

function of(unit: string | undefined): string {
  return unit ? ` of ${unit}` : '';
}

function bounds(range: NumberRange): string {
  const span = range.max === undefined ? `of at least ${range.min}` : `from ${range.min} to ${range.max}`;
  const infinity = range.infinity && !range.note ? ' (or Infinity)' : '';
  return `${span}${infinity}${range.note ? ` ${range.note}` : ''}`;
}
