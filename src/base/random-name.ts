// Its own module, apart from the name rules (names.ts): a bundle that checks names but makes
// none, such as the CLI's, then carries no import of the random-number generator it never calls.
import { builtin } from './builtin.js';

/** Bytes of randomness in every name: 128 bits, as in a UUIDv4 plus some. */
const RANDOM_BYTES = 16;
/** The random part is hex: safe on case-insensitive file systems and in every shell. */
export const RANDOM_NAME_LENGTH = RANDOM_BYTES * 2;

const POOL_SIZE = RANDOM_BYTES * 256;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolOffset = POOL_SIZE;

/** A fresh 128-bit random string from the crypto RNG, drawn from a refilled pool. */
export function randomName(): string {
  if (poolOffset + RANDOM_BYTES > POOL_SIZE) {
    builtin('node:crypto').randomFillSync(pool);
    poolOffset = 0;
  }
  const name = pool.toString('hex', poolOffset, poolOffset + RANDOM_BYTES);
  poolOffset += RANDOM_BYTES;
  return name;
}
