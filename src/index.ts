/**
 * Safe, scoped temporary files for Node.js services.
 *
 * @example
 * import { TempFileManager } from 'tempfile-manager';
 * const mgr = new TempFileManager();
 * await using tmp = mgr.file('.pdf');
 *
 * @packageDocumentation
 */
export { TempFileManager } from './manager.js';
export type { TempFileStats } from './manager.js';
export type { TempFileManagerOptions } from './options.js';
export type { WriteOptions } from './write.js';
export type { WriteSource } from './source.js';
export { TempFile } from './file.js';
export type { TempReadStreamOptions, TempWriteStreamOptions } from './file.js';
export type { KeepOptions } from './move.js';
export type { HandoffOptions } from './handoff.js';
export type { HandoffTicket, HandoffMeta, JsonValue } from './ticket.js';
export { TempDir } from './dir.js';
export { TempScope } from './scope.js';
export { ClaimedFile } from './claim.js';
export type { ClaimOptions } from './claim.js';
export { parseTicket } from './ticket.js';
export type { NameArgument, NameOptions } from './create.js';
export type { FileSystem } from './fs.js';
export type { SweepOptions, SweepProgress, SweepReport } from './sweep.js';
export type { PathError } from './walk.js';
export {
  TempFileError,
  InvalidNameError,
  InvalidOptionError,
  UnsafeRootError,
  DisposedError,
  ManagerClosedError,
  DestinationExistsError,
  RemoveError,
  SizeLimitError,
  QuotaExceededError,
  AbortedError,
  SourceError,
  HandoffNotFoundError,
  HandoffExpiredError,
  AlreadyClaimedError,
  BadTicketError,
  HandoffMismatchError,
  LeaseLostError,
  NoSpaceError,
  DiskQuotaError,
  FileSystemError,
} from './errors.js';
export type { TempFileErrorCode, TempFileErrorOptions, UnsafeRootReason } from './errors.js';
