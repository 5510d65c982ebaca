import { CHANNELS, publish } from '../base/channels.js';
import type { ManagerContext, Owner } from '../context/context.js';
import { InvalidNameError, systemErrorCode, toFileSystemError } from '../base/errors.js';
import { CREATE_EXCLUSIVE, fs } from '../disk/fs.js';
import { TempDir } from './dir.js';
import { TempFile } from './file.js';
import { describe, validateNameLength, validateNamePart } from '../base/names.js';
import { randomName } from '../base/random-name.js';
import { ownOptions } from '../base/validators.js';
import { builtin } from '../base/builtin.js';
const path = builtin('node:path');

/** Options for a new temp file or directory's name. */
export interface NameOptions {
  /** Appended to the random part, e.g. `'.pdf'`. No separators, no `..`, no control characters. */
  readonly suffix?: string;
  /** Put before the random part; replaces the manager's `prefix` for this name. */
  readonly prefix?: string;
}

/** A suffix such as `'.mkv'`, or {@link NameOptions}. */
export type NameArgument = string | NameOptions | undefined;

// The same few suffixes come back on every request: remember the ones already checked.
const checkedParts = new Set<string>();
const CHECKED_PARTS_LIMIT = 256;

function checkPart(value: unknown, what: 'prefix' | 'suffix'): string {
  if (typeof value === 'string' && checkedParts.has(value)) return value;
  const part = validateNamePart(value, what);
  if (checkedParts.size < CHECKED_PARTS_LIMIT) checkedParts.add(part);
  return part;
}

/** A name's checked prefix and suffix: the random part goes between them. @internal */
export interface NameParts {
  readonly prefix: string;
  readonly suffix: string;
}

/**
 * Checks the name options once per call, before anything touches the disk; the random part is
 * drawn per attempt. The one place a name argument is read. @internal
 */
export function resolveNameParts(context: ManagerContext, arg: unknown): NameParts {
  let prefix = context.prefix;
  let suffix = '';
  if (typeof arg === 'string') {
    suffix = checkPart(arg, 'suffix');
  } else if (arg !== undefined) {
    if (typeof arg !== 'object' || arg === null || Array.isArray(arg) || Buffer.isBuffer(arg)) {
      throw new InvalidNameError(
        `Expected a suffix string or { prefix?, suffix? }, got ${describe(arg)}: pass e.g. '.pdf'.`,
      );
    }
    const unknownKey = Object.keys(arg).find((key) => key !== 'prefix' && key !== 'suffix');
    if (unknownKey !== undefined) {
      throw new InvalidNameError(`Unknown name option \`${unknownKey}\`: only \`prefix\` and \`suffix\` are accepted.`);
    }
    const { prefix: ownPrefix, suffix: ownSuffix } = ownOptions(arg as NameOptions);
    if (ownPrefix !== undefined) prefix = checkPart(ownPrefix, 'prefix');
    if (ownSuffix !== undefined) suffix = checkPart(ownSuffix, 'suffix');
  }
  validateNameLength(prefix, suffix);
  return { prefix, suffix };
}

/** `parts` with another suffix (an upload's, named from its sniffed type), checked as the first was. @internal */
export function withSuffix(parts: NameParts, suffix: string): NameParts {
  const checked = checkPart(suffix, 'suffix');
  validateNameLength(parts.prefix, checked);
  return { prefix: parts.prefix, suffix: checked };
}

// A clash of 128 random bits means something was planted at the name: never reuse it, draw again.
const CREATE_ATTEMPTS = 4;

interface Candidates {
  readonly suffix: string;
  /** A fresh random name: its public path and the path system calls take (through the pinned session). */
  next(): Candidate;
}

/** A name in the session: `path` is the public `<root>/<session>/<name>`, `access` reaches it. @internal */
export interface Candidate {
  readonly path: string;
  readonly access: string;
}

function candidates(context: ManagerContext, { prefix, suffix }: NameParts): Candidates {
  const session = context.session();
  context.checkRoot();
  // Plain concatenation: path.join would normalise the long session path on every call.
  const publicBase = session.path + path.sep + prefix;
  const accessBase = `${session.base}/${prefix}`;
  return {
    suffix,
    next: () => {
      const name = randomName() + suffix;
      return { path: publicBase + name, access: accessBase + name };
    },
  };
}

function retryable(err: unknown, attempt: number): boolean {
  return systemErrorCode(err) === 'EEXIST' && attempt < CREATE_ATTEMPTS;
}

/** Runs `make(access)` on fresh random names until one does not exist yet. @internal */
export function createUnique(
  context: ManagerContext,
  parts: NameParts,
  what: string,
  make: (access: string) => void,
): Candidate & { suffix: string } {
  const names = candidates(context, parts);
  for (let attempt = 1; ; attempt++) {
    const candidate = names.next();
    try {
      make(candidate.access);
      return { ...candidate, suffix: names.suffix };
    } catch (err) {
      if (!retryable(err, attempt)) throw toFileSystemError(`create the temp ${what}`, candidate.path, err);
    }
  }
}

/** Async {@link createUnique}: `make` opens the file and its result is handed back. @internal */
export async function createUniqueAsync<T>(
  context: ManagerContext,
  parts: NameParts,
  what: string,
  make: (access: string) => Promise<T>,
): Promise<Candidate & { suffix: string; result: T }> {
  const names = candidates(context, parts);
  for (let attempt = 1; ; attempt++) {
    const candidate = names.next();
    try {
      const result = await make(candidate.access);
      return { path: candidate.path, access: candidate.access, suffix: names.suffix, result };
    } catch (err) {
      if (!retryable(err, attempt)) throw toFileSystemError(`create the temp ${what}`, candidate.path, err);
    }
  }
}

/** Creates an empty file (0600, O_CREAT|O_EXCL|O_NOFOLLOW) in the session. */
export function createFile(context: ManagerContext, owner: Owner, arg: unknown): TempFile {
  // No fstat here: it would be a fourth system call per create. The file's identity is learnt at
  // its first open, which checks that it is a regular file with one link (TempFile.identity).
  const { path: filePath, access, suffix } = createUnique(context, resolveNameParts(context, arg), 'file', (candidate) => {
    const fd = fs.openSync(candidate, CREATE_EXCLUSIVE, 0o600);
    try {
      fs.closeSync(fd);
    } catch (err) {
      unlinkAfterFailure(candidate); // close() released the descriptor whatever it answered
      throw err;
    }
  });
  publish(CHANNELS.fileCreate, () => ({ root: context.root, path: filePath, kind: 'file', by: 'create' }));
  return new TempFile(context, owner, filePath, access, suffix);
}

// The create already failed; a second failure here must not hide the first.
function unlinkAfterFailure(filePath: string): void {
  try {
    fs.unlinkSync(filePath);
  } catch {
    // The sweep removes it with the session.
  }
}

/** Creates an empty directory (0700) in the session. */
export function createDir(context: ManagerContext, owner: Owner, arg: unknown): TempDir {
  const { path: dirPath, access } = createUnique(context, resolveNameParts(context, arg), 'directory', (candidate) => {
    fs.mkdirSync(candidate, { mode: 0o700 });
  });
  publish(CHANNELS.fileCreate, () => ({ root: context.root, path: dirPath, kind: 'dir', by: 'create' }));
  return new TempDir(context, owner, dirPath, access);
}
