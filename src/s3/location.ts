import { BadTicketError } from '../base/errors.js';
import { checkLocationFields, isValidPrefix, type StoreLocation } from '../base/stores.js';

// The S3 store's own part of a ticket: its bucket's rules live here, not in the core, which checks
// only a location's generic shape (base/stores.ts).

/** Where an S3 store's objects live: `{ kind: 's3', bucket, prefix }`. Never a credential nor an endpoint. */
export interface S3Location extends StoreLocation {
  /** Always `'s3'`. */
  readonly kind: 's3';
  /** The bucket. */
  readonly bucket: string;
  /** The key prefix every object of the store starts with (`''`, or ending in `/`). */
  readonly prefix: string;
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Whether `bucket` is a valid S3 bucket name. @internal */
export function isValidBucket(bucket: string): boolean {
  return BUCKET.test(bucket) && !bucket.includes('..');
}

/**
 * Checks a ticket's location as an S3 store's: `{ kind: 's3', bucket, prefix }`, a valid bucket
 * name and key prefix. @throws {@link BadTicketError} @internal
 */
export function parseS3Location(location: StoreLocation): S3Location {
  if (location.kind !== 's3') throw new BadTicketError(`\`store.kind\` is "${location.kind}", not "s3"`, 'store');
  checkLocationFields(location, ['bucket', 'prefix']);
  const { bucket, prefix } = location as S3Location;
  if (!isValidBucket(bucket)) throw new BadTicketError('`store.bucket` is not a valid bucket name', 'store');
  if (!isValidPrefix(prefix)) throw new BadTicketError('`store.prefix` is not a valid key prefix', 'store');
  return { kind: 's3', bucket, prefix };
}
