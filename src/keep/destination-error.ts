import { NoSpaceError, systemErrorCode, toFileSystemError, type TempFileError } from '../base/errors.js';
import { HOST_PLATFORM, type Platform } from '../base/platform.js';

/**
 * Types a failed step of `keep()` at its destination. A full file system there is the
 * destination's, not the root's: the advice names the destination's volume. Other failures are
 * advised in the words of `platform` (a file held open elsewhere, on Windows).
 */
export function toDestinationError(action: string, destination: string, err: unknown, platform: Platform = HOST_PLATFORM): TempFileError {
  if (systemErrorCode(err) !== 'ENOSPC') return toFileSystemError(action, destination, err, platform);
  return new NoSpaceError(
    destination,
    err,
    `No space left on the file system of the keep() destination ${destination}: free space on the destination's volume, ` +
      'or keep the file at a destination on another volume. The file was not moved, and nothing was left at the destination.',
  );
}
