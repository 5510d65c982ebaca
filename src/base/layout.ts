import { builtin } from './builtin.js';
const path = builtin('node:path');

/**
 * Every name the library gives to something on disk, built and parsed here and nowhere else.
 *
 * ```
 * <root>/
 *   .tempfile-manager                     the root marker (format version inside)
 *   session_<owner>/                      a manager's session: its files and directories
 *     .handoff_<id>/data<suffix>          a handoff on its way out (staging, part of the session)
 *     .probe_<random>/                    the file-system probe's scratch (removed at once)
 *     .removing_<random>                  a file or tree a removal set aside while Windows held it
 *   session_<owner>.lock/                 the session's lock: its ctime is the session's heartbeat
 *   .removing_<random>/                   a closed session set aside while Windows held a file in it
 *   handoff/
 *     entry_<id>_<expiry>_<binding>/      a handed-off file waiting for (or under) a claim; the
 *                                         binding: 32 hex digits of the SHA-256 of its ticket's fields
 *       data<suffix>                      the bytes while nobody holds them
 *       held_<owner><suffix>              the bytes while <owner> holds them (the name is the lease)
 *   tus/                                  the uploads of `tempfile-manager/tus`, nobody's session
 *     upload_<id>/                        one upload in progress
 *       info.json                         its length, metadata, creation date and expiry, written once
 *       data                              the bytes received, while no request holds the upload
 *       held_<owner>                      the same while <owner>'s request holds it (the lock)
 *       removing                          taken by an expiry or a DELETE, on its way out
 * ```
 *
 * Outside the root, `keep()` across file systems copies through
 * `.<basename>.tfm-keep-<random>.partial` in the destination's directory. Inside a tree being
 * removed without /proc, a deep directory is moved up to the tree's top as `.deep-<random>`. A
 * manager that only claims runs the probe in the ticket's entry directory.
 *
 * `<owner>` is `<host>_<pid>[.<thread>]_<start>_<created>_<random>` (see {@link formatOwnerToken}). Every
 * name has one distinctive shape; anything under the root that does not parse is foreign and
 * never removed.
 * @internal
 * @module
 */

/** The on-disk format this version writes and reads; stored in the root marker. */
export const LAYOUT_FORMAT = 1;

/** The file that marks a directory as a manager's root. */
export const ROOT_MARKER = '.tempfile-manager';

/** The marker's content: a line that says what it is, and the format version. */
export function rootMarkerContent(format = LAYOUT_FORMAT): string {
  return `tempfile-manager root\nformat ${format}\n`;
}

/** The format version in a marker's content; undefined when it is not a marker. */
export function parseRootMarker(content: string): number | undefined {
  const match = /^tempfile-manager root\nformat (\d{1,6})\n$/.exec(content);
  return match ? Number(match[1]) : undefined;
}

/** The most bytes a single file name may take on the file systems we support. */
export const MAX_NAME_BYTES = 255;

// ---------------------------------------------------------------------------------------------
// Owner tokens: who made a session, or who holds a lease.

/** The parts of an owner token. */
export interface OwnerToken {
  /** The host id: `[A-Za-z0-9.-]`, 1 to 64 characters. */
  readonly host: string;
  readonly pid: number;
  /** The owning thread's kernel thread id (Linux; the pid itself for the main thread). */
  readonly thread?: number;
  /**
   * The owner's start token (see `ProcessIdentity.start`): on Linux `<boot>.<pidns>.<ticks>`, the
   * machine (boot id and PID namespace) and the thread's start time.
   */
  readonly start: string;
  /** When the token was made, in epoch milliseconds of the owner's clock: informative only. */
  readonly created: number;
  /** 64 random bits, hex. */
  readonly random: string;
}

const OWNER_FIELDS = {
  host: { pattern: '[A-Za-z0-9.-]{1,64}', maxBytes: 64 },
  pid: { pattern: '\\d{1,10}(?:\\.\\d{1,10})?', maxBytes: 21 },
  start: { pattern: '[0-9a-z.]{1,40}', maxBytes: 40 },
  created: { pattern: '[0-9a-z]{1,11}', maxBytes: 11 },
  random: { pattern: '[0-9a-f]{16}', maxBytes: 16 },
} as const;
const OWNER_FIELD_LIST = Object.values(OWNER_FIELDS);
const OWNER_SEPARATOR = '_';

/** The longest owner token any process can make. */
const MAX_OWNER_TOKEN_BYTES =
  OWNER_FIELD_LIST.reduce((sum, field) => sum + field.maxBytes, 0) + OWNER_SEPARATOR.length * (OWNER_FIELD_LIST.length - 1);

const OWNER_PATTERN = OWNER_FIELD_LIST.map((field) => `(${field.pattern})`).join(OWNER_SEPARATOR);

/** `<host>_<pid>[.<thread>]_<start>_<created, base 36>_<random>`. */
export function formatOwnerToken(owner: OwnerToken): string {
  const pid = owner.thread === undefined ? `${owner.pid}` : `${owner.pid}.${owner.thread}`;
  const sep = OWNER_SEPARATOR;
  return `${owner.host}${sep}${pid}${sep}${owner.start}${sep}${owner.created.toString(36)}${sep}${owner.random}`;
}

function ownerFromGroups(match: RegExpExecArray | null, first = 1): OwnerToken | undefined {
  if (!match) return undefined;
  const [host, pids, start, created, random] = match.slice(first, first + 5) as [string, string, string, string, string];
  const [pid, thread] = pids.split('.');
  return { host, pid: Number(pid), ...(thread !== undefined && { thread: Number(thread) }), start, created: parseInt(created, 36), random };
}

// ---------------------------------------------------------------------------------------------
// Sessions, at the top of the root.

const SESSION_PREFIX = 'session_';
const SESSION_LOCK_SUFFIX = '.lock';
const SESSION_NAME = new RegExp(`^${SESSION_PREFIX}${OWNER_PATTERN}$`);

/** A session directory's name. */
export function sessionName(owner: OwnerToken): string {
  return SESSION_PREFIX + formatOwnerToken(owner);
}

/** Parses a session directory's name; undefined for anything else. */
export function parseSessionName(name: string): OwnerToken | undefined {
  return ownerFromGroups(SESSION_NAME.exec(name));
}

/** The path of a session's lock directory, `<dir>.lock`. */
export function sessionLockPath(sessionDir: string): string {
  return sessionDir + SESSION_LOCK_SUFFIX;
}

/** What a name at the top of the root is. */
export type RootEntry =
  | { readonly kind: 'marker' }
  | { readonly kind: 'handoff' }
  | { readonly kind: 'tus' }
  | { readonly kind: 'session'; readonly session: string; readonly owner: OwnerToken }
  | { readonly kind: 'session-lock'; readonly session: string; readonly owner: OwnerToken }
  | { readonly kind: 'set-aside' }
  | { readonly kind: 'live-signal' }
  | { readonly kind: 'foreign' };

/** Classifies a name found at the top of the root. */
export function parseRootEntry(name: string): RootEntry {
  if (name === ROOT_MARKER) return { kind: 'marker' };
  if (name === HANDOFF_DIR) return { kind: 'handoff' };
  if (name === TUS_DIR) return { kind: 'tus' };
  if (isSetAsideName(name)) return { kind: 'set-aside' };
  if (isLiveSignalName(name)) return { kind: 'live-signal' };
  const isLock = name.endsWith(SESSION_LOCK_SUFFIX);
  const session = isLock ? name.slice(0, -SESSION_LOCK_SUFFIX.length) : name;
  const owner = parseSessionName(session);
  if (!owner) return { kind: 'foreign' };
  return { kind: isLock ? 'session-lock' : 'session', session, owner };
}

// ---------------------------------------------------------------------------------------------
// Handoff entries.

/** The directory of handed-off entries, under the root. */
export const HANDOFF_DIR = 'handoff';

/** `<root>/handoff`. */
export function handoffDirOf(root: string): string {
  return path.join(root, HANDOFF_DIR);
}

const ENTRY_PREFIX = 'entry_';
// Without a binding: an entry handed off by a version before entries were bound.
const ENTRY_NAME = /^entry_([0-9a-f]{32})_([0-9a-z]{1,11})(?:_[0-9a-f]{32})?$/;
const BINDING_BYTES = 32;

/**
 * An entry's directory name: its id and its expiry, so the sweep needs to read nothing, and with
 * `binding` (handoff/binding.ts) the ticket's fields it is bound to, so that a claim of an edited
 * ticket names no entry.
 */
export function entryName(id: string, expiresAt: number, binding?: string): string {
  return `${ENTRY_PREFIX}${id}_${expiresAt.toString(36)}${binding === undefined ? '' : `_${binding}`}`;
}

/** The start of the names of every entry of handoff `id`, bound or not. */
export function entryPrefix(id: string): string {
  return `${ENTRY_PREFIX}${id}_`;
}

/** Parses an entry directory's name; undefined for anything else. */
export function parseEntryName(name: string): { id: string; expiresAt: number } | undefined {
  const match = ENTRY_NAME.exec(name);
  return match ? { id: match[1]!, expiresAt: parseInt(match[2]!, 36) } : undefined;
}

const DATA = 'data';
const HELD_PREFIX = 'held_';
const HELD = new RegExp(`^${HELD_PREFIX}${OWNER_PATTERN}`);
const HELD_EXACT = new RegExp(`^${HELD_PREFIX}${OWNER_PATTERN}$`);

/** The data file's name while nobody holds the entry. */
export function dataName(suffix: string): string {
  return DATA + suffix;
}

/** The data file's name while `owner` (a formatted owner token) holds it. */
export function heldName(owner: string, suffix: string): string {
  return HELD_PREFIX + owner + suffix;
}

/** True when `fileName` is exactly a held data file of an entry with `suffix`. */
export function isHeldName(fileName: string, suffix: string): boolean {
  return fileName.endsWith(suffix) && HELD_EXACT.test(fileName.slice(0, fileName.length - suffix.length));
}

/** True when `fileName` is a held file's name, whatever its suffix (what {@link holderOf} parses). */
export function isHeldFileName(fileName: string): boolean {
  return HELD.test(fileName);
}

/** The holder encoded in a held file's name; undefined for anything else. */
export function holderOf(fileName: string): OwnerToken | undefined {
  return ownerFromGroups(HELD.exec(fileName));
}

/**
 * The name a sweep gives an expired entry's data file to take it from claimers before removing
 * the entry: neither a data nor a held name, so no claim finds it, and an entry holding only it
 * counts as consumed (any later sweep removes it).
 */
export const TAKEN_FOR_REMOVAL = 'removing';

/** True for a data file of an entry, held or not, whatever its suffix. */
export function isDataFile(fileName: string): boolean {
  return fileName.startsWith(DATA) || isHeldFileName(fileName);
}

// ---------------------------------------------------------------------------------------------
// tus uploads: outside every session, so that another process sharing the root resumes an
// upload whose server died; the data file is named as a handoff entry's is (data, held_<owner>,
// removing), and the same lease rules apply to it.

/** The directory of tus uploads, under the root. */
export const TUS_DIR = 'tus';

/** The file of an upload's length, metadata and creation date, inside its directory. */
export const TUS_INFO = 'info.json';

const TUS_UPLOAD_PREFIX = 'upload_';
const TUS_ID = /^[A-Za-z0-9_-]{1,128}$/;
const TUS_UPLOAD_NAME = /^upload_([A-Za-z0-9_-]{1,128})$/;

/** True for an upload id the store takes: 1 to 128 of `[A-Za-z0-9_-]` (tus's own ids are 32 hex digits). */
export function isTusUploadId(id: string): boolean {
  return TUS_ID.test(id);
}

/** An upload's directory name, `id` being checked by {@link isTusUploadId}. */
export function tusUploadName(id: string): string {
  return TUS_UPLOAD_PREFIX + id;
}

/** The upload id of a directory name under `tus/`; undefined for anything else. */
export function parseTusUploadName(name: string): string | undefined {
  return TUS_UPLOAD_NAME.exec(name)?.[1];
}

// ---------------------------------------------------------------------------------------------
// Staging: a handoff builds its entry inside its own session, then renames it into `handoff/`.

const STAGING_PREFIX = '.handoff_';

/** The staging directory of handoff `id`, inside the session directory. */
export function stagingName(id: string): string {
  return STAGING_PREFIX + id;
}

// ---------------------------------------------------------------------------------------------
// The file-system probe: a scratch directory inside the session, removed at once.

/** The probe's scratch directory, inside the session directory. */
export function probeName(random: string): string {
  return `.probe_${random}`;
}

// ---------------------------------------------------------------------------------------------
// Removal without /proc: a directory whose path grows too long is moved up into the top of the
// tree being removed, under this name, and removed from there with the rest of the tree.

/** The name a deep directory is moved up under, `random` being 16 hex digits. */
export function hoistedName(random: string): string {
  return `.deep-${random}`;
}

// ---------------------------------------------------------------------------------------------
// Removal under a hold (Windows): what another handle still holds once the retries are spent is
// renamed aside, so that its name is free at once. A removal by its live owner sets it aside in
// the owner's session, which removes it at close; a closed session that cannot go is set aside at
// the top of the root, where it is nobody's: every sweep removes it once the hold has ended.

const SET_ASIDE_NAME = /^\.removing_[0-9a-f]{32}$/;

/** The name a held file or tree is set aside under, `random` being 32 hex digits. */
export function setAsideName(random: string): string {
  return `.removing_${random}`;
}

/** True for a name {@link setAsideName} makes. */
function isSetAsideName(name: string): boolean {
  return SET_ASIDE_NAME.test(name);
}

// ---------------------------------------------------------------------------------------------
// A thread's live signal: a FIFO at the top of the root that the thread holds open for reading
// while it lives (owner/live-signal.ts). The kernel closes it when the thread ends, however it ends.

const LIVE_SIGNAL_PREFIX = 'live_';
const LIVE_SIGNAL_NAME = /^live_[0-9a-f]{16}(\.[0-9a-f]{8})?$/;

/**
 * The name of the live signal of the owner whose identity hashes to `digest` (16 hex digits):
 * `live_<digest>`; with `pending` (8 hex digits), the name it is made under before it is held.
 */
export function liveSignalName(digest: string, pending?: string): string {
  return pending === undefined ? LIVE_SIGNAL_PREFIX + digest : `${LIVE_SIGNAL_PREFIX}${digest}.${pending}`;
}

/** True for a name {@link liveSignalName} makes. */
export function isLiveSignalName(name: string): boolean {
  return LIVE_SIGNAL_NAME.test(name);
}

// ---------------------------------------------------------------------------------------------
// keep() across file systems: a copy next to the destination, outside the root.

const KEEP_STAGING_MARK = '.tfm-keep-';
const KEEP_STAGING_END = '.partial';

/**
 * The staging name of a cross-device `keep()`: `.<basename>.tfm-keep-<random>.partial`, in the
 * destination's directory, `random` being 32 hex digits. The basename is cut (on a character
 * boundary) so that the whole name fits in one file name. A crash can leave one behind
 * (docs/scoped-files.md, "After a crash").
 */
export function keepStagingName(basename: string, random: string): string {
  const extra = 1 + KEEP_STAGING_MARK.length + random.length + KEEP_STAGING_END.length;
  return `.${cutToBytes(basename, MAX_NAME_BYTES - extra)}${KEEP_STAGING_MARK}${random}${KEEP_STAGING_END}`;
}

/** The longest start of `text` of at most `maxBytes` bytes of UTF-8, never cutting a character. @internal */
export function cutToBytes(text: string, maxBytes: number): string {
  let bytes = 0;
  let end = 0;
  for (const character of text) {
    bytes += Buffer.byteLength(character);
    if (bytes > maxBytes) break;
    end += character.length;
  }
  return text.slice(0, end);
}

// ---------------------------------------------------------------------------------------------
// Limits derived from the names above.

/**
 * The longest suffix a file may have: once handed off, it is held as `held_<owner><suffix>`,
 * which must fit in one file name.
 */
export const MAX_SUFFIX_BYTES = MAX_NAME_BYTES - HELD_PREFIX.length - MAX_OWNER_TOKEN_BYTES;

const ENTRY_NAME_BYTES = ENTRY_PREFIX.length + 32 + 1 + 11 + 1 + BINDING_BYTES;

/**
 * The most bytes a path the library builds below the root adds to it: the longest of
 * `/session_<owner>/<file name>` (a name of {@link MAX_NAME_BYTES}), the session's
 * `/session_<owner>.lock`, `/session_<owner>/.handoff_<id>/data<suffix>` and
 * `/handoff/entry_<id>_<expiry>_<binding>/held_<owner><suffix>`, each with the longest owner token and
 * suffix. Paths through `/proc/<pid>/fd/<fd>/` do not carry the root, and are shorter.
 */
export const MAX_PATH_BELOW_ROOT_BYTES = Math.max(
  1 + SESSION_PREFIX.length + MAX_OWNER_TOKEN_BYTES + 1 + MAX_NAME_BYTES,
  1 + SESSION_PREFIX.length + MAX_OWNER_TOKEN_BYTES + SESSION_LOCK_SUFFIX.length,
  1 + SESSION_PREFIX.length + MAX_OWNER_TOKEN_BYTES + 1 + STAGING_PREFIX.length + 32 + 1 + DATA.length + MAX_SUFFIX_BYTES,
  1 + HANDOFF_DIR.length + 1 + ENTRY_NAME_BYTES + 1 + MAX_NAME_BYTES,
);
