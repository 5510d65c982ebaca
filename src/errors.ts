/**
 * The whole error catalogue, `tempfile-manager/errors`: every class the library throws, with its
 * stable `code` and the fields it carries. The main entry exports the base class, the code
 * union, {@link isTempFileError} and the classes callers branch on; the rest are here. Each
 * error's `code` tells it apart without importing its class:
 *
 * ```ts
 * import { isTempFileError } from 'tempfile-manager';
 * import { DestinationExistsError } from 'tempfile-manager/errors';
 *
 * try { await file.keep(dest) } catch (err) {
 *   if (err instanceof DestinationExistsError) console.log('taken:', err.path);
 *   else if (isTempFileError(err) && err.code === 'ERR_TEMPFILE_IO') console.log(err.syscallCode);
 * }
 * ```
 *
 * @packageDocumentation
 * @module tempfile-manager/errors
 */
export {
  isTempFileError,
  TempFileError,
  InvalidNameError,
  InvalidOptionError,
  UnsafeRootError,
  RootChangedError,
  DisposedError,
  ManagerClosedError,
  DestinationExistsError,
  TempFileReplacedError,
  RemoveError,
  MountPointError,
  SizeLimitError,
  QuotaExceededError,
  AbortedError,
  SourceError,
  CallbackError,
  TypeNotAcceptedError,
  VerifyRefusedError,
  VerifyFailedError,
  HandoffNotFoundError,
  HandoffExpiredError,
  AlreadyClaimedError,
  BadTicketError,
  HandoffMismatchError,
  LeaseLostError,
  NoSpaceError,
  DiskQuotaError,
  UnsupportedFileSystemError,
  FileSystemError,
  UploadLimitError,
  MalformedUploadError,
  MissingPeerError,
  StoreError,
  UploadReceiptError,
} from './base/errors.js';
export type {
  DiskErrors,
  DetectedType,
  TempFileErrorCode,
  TempFileErrorOptions,
  UnsafeRootReason,
  RootChange,
  FileSystemPrimitive,
  VerifyFailure,
  UploadLimit,
  MalformedUploadReason,
  StoreFailure,
  ReceiptFailure,
} from './base/errors.js';
