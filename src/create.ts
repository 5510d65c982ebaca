import path from 'node:path';
import type { ManagerContext, Owner } from './context.js';
import { InvalidNameError, systemErrorCode, toFileSystemError } from './errors.js';
import { CREATE_EXCLUSIVE } from './fs.js';
import { TempDir } from './dir.js';
import { TempFile } from './file.js';
import { describe, randomName, validateNameLength, validateNamePart } from './names.js';

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

function resolveName(context: ManagerContext, arg: unknown): string {
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
    const { prefix: ownPrefix, suffix: ownSuffix } = arg as NameOptions;
    if (ownPrefix !== undefined) prefix = checkPart(ownPrefix, 'prefix');
    if (ownSuffix !== undefined) suffix = checkPart(ownSuffix, 'suffix');
  }
  validateNameLength(prefix, suffix);
  return `${prefix}${randomName()}${suffix}`;
}

/** Creates an empty file (0600, O_CREAT|O_EXCL|O_NOFOLLOW) in the session. */
export function createFile(context: ManagerContext, owner: Owner, arg: unknown): TempFile {
  const name = resolveName(context, arg);
  const filePath = path.join(context.sessionDir(), name);
  const fs = context.fs;
  let fd: number;
  try {
    fd = fs.openSync(filePath, CREATE_EXCLUSIVE, 0o600);
  } catch (err) {
    throw toFileSystemError('create the temp file', filePath, err);
  }
  try {
    fs.closeSync(fd);
  } catch (err) {
    if (systemErrorCode(err) !== 'EINTR') {
      fs.unlinkSync(filePath);
      throw toFileSystemError('create the temp file', filePath, err);
    }
  }
  return new TempFile(context, owner, filePath);
}

/** Creates an empty directory (0700) in the session. */
export function createDir(context: ManagerContext, owner: Owner, arg: unknown): TempDir {
  const name = resolveName(context, arg);
  const dirPath = path.join(context.sessionDir(), name);
  try {
    context.fs.mkdirSync(dirPath, { mode: 0o700 });
  } catch (err) {
    throw toFileSystemError('create the temp directory', dirPath, err);
  }
  return new TempDir(context, owner, dirPath);
}
