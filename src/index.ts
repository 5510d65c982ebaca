/**
 * Safe, scoped temporary files for Node.js services. A {@link TempFileManager} owns a root
 * directory and makes files and directories in it that live exactly as long as their scope:
 * `using` / `await using`, {@link TempFileManager.withScope} without the syntax, or an
 * explicit `remove()`. {@link TempFileManager.write} streams an upload to disk in constant memory
 * under size, quota and free-space limits; {@link TempFile.handoff} hands a file to a worker,
 * which claims it with {@link TempFileManager.claim}. What a crashed process left is removed by
 * {@link TempFileManager.sweep} (or `npx tempfile-manager sweep`). Every error is a
 * {@link TempFileError} with a stable `code`; test for one with {@link isTempFileError}. The
 * classes callers branch on are exported here; the whole catalogue is `tempfile-manager/errors`.
 *
 * ```ts
 * import { TempFileManager } from 'tempfile-manager';
 * const mgr = new TempFileManager();
 * await using tmp = mgr.file('.pdf'); // removed at the end of the block
 * ```
 *
 * The Express and Fastify adapters are the subpath exports `tempfile-manager/express` and
 * `tempfile-manager/fastify`.
 *
 * @packageDocumentation
 * @module tempfile-manager
 */
export { TempFileManager } from './manager/manager.js';
export type { TempFileStats } from './manager/manager.js';
export type { TempFileManagerOptions } from './root/options.js';
export type { WriteOptions } from './handles/write.js';
export type { SpoolOptions } from './handles/spool.js';
export type { WriteSource } from './write/source.js';
export type { VerifyResult } from './write/verify.js';
export { TempFile } from './handles/file.js';
export type { TempReadStreamOptions, TempWriteStreamOptions } from './handles/file.js';
export type { KeepOptions } from './keep/move.js';
export type { HandoffOptions } from './handoff/handoff.js';
export type { StreamHandoffOptions } from './manager/stream-handoff.js';
export type { HandoffTicket, HandoffMeta, JsonValue } from './handoff/ticket.js';
export type { HandoffStore, StoreSweepResult } from './base/stores.js';
export { TempDir } from './handles/dir.js';
export { TempScope } from './handles/scope.js';
export { ClaimedFile } from './handoff/claim.js';
export type { ClaimOptions } from './handoff/claim.js';
export { parseTicket } from './handoff/ticket.js';
export type { NameArgument, NameOptions } from './handles/create.js';
export type { SweepOptions, SweepProgress, SweepReport } from './sweep/sweep.js';
export type { LeftPath, LeftReason, PathError } from './disk/walk.js';
export { isTempFileError, TempFileError } from './base/error-class.js';
export type { TempFileErrorCode } from './base/error-class.js';
export {
  InvalidNameError,
  UnsafeRootError,
  DisposedError,
  SizeLimitError,
  QuotaExceededError,
  NoSpaceError,
  DiskQuotaError,
  HandoffNotFoundError,
  HandoffExpiredError,
  AlreadyClaimedError,
  BadTicketError,
  HandoffMismatchError,
  LeaseLostError,
} from './base/common-errors.js';
export type { DetectedType, UnsafeRootReason } from './base/common-errors.js';
