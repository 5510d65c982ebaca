/**
 * Handoff without a shared disk: `tempfile-manager/s3` makes a store of an S3 bucket (AWS S3,
 * Ceph RGW, MinIO...) that `file.handoff({ ttlMs, store })` uploads to and `mgr.claim(ticket)`
 * downloads from, on a host that shares no disk with the one that handed the file off. One holder
 * at a time, fenced by the store's conditional writes; no clock compared across hosts. The AWS
 * SDK v3 (`@aws-sdk/client-s3`, `@aws-sdk/lib-storage`) is an optional peer, loaded by this entry
 * only (docs/s3.md).
 *
 * ```ts
 * import { s3Store } from 'tempfile-manager/s3';
 * const store = s3Store({ client, bucket: 'uploads', prefix: 'tmp/' });
 * const ticket = await upload.handoff({ ttlMs: 3_600_000, store });
 * const worker = new TempFileManager({ stores: [store] });
 * await worker.withClaim(ticket, (claimed) => transcode(claimed.path));
 * ```
 *
 * @packageDocumentation
 * @module tempfile-manager/s3
 */
export { s3Store, S3Store } from './store.js';
export type { S3StoreOptions, S3SweepOptions } from './store.js';
export type {
  ConfirmUploadOptions,
  IntakePart,
  PresignedMultipart,
  PresignedObject,
  PresignedPart,
  PresignedUpload,
  PresignMultipartOptions,
  PresignUploadOptions,
  UploadReceipt,
} from './intake.js';
export type { S3Location } from './location.js';
export type { HandoffStore, StoreLocation, StoreSweepError, StoreSweepReport, StoreSweepResult } from '../base/stores.js';
export { StoreError, UploadReceiptError } from '../base/errors.js';
export type { ReceiptFailure, StoreFailure } from '../base/errors.js';
