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

/** A fresh 128-bit random string from the kernel's generator, drawn from a refilled pool. */
export function randomName(): string {
  if (poolOffset + RANDOM_BYTES > POOL_SIZE) {
    refill(pool);
    poolOffset = 0;
  }
  const name = pool.toString('hex', poolOffset, poolOffset + RANDOM_BYTES);
  poolOffset += RANDOM_BYTES;
  return name;
}

/**
 * Fills `bytes` from the kernel's generator: `/dev/urandom`, what OpenSSL itself draws from, where
 * there is one (Linux, macOS, the BSDs), else `node:crypto`. Loading `node:crypto` costs a
 * process about 1.7 MiB resident for good, too much for a name (bench/gate.mjs, memory at rest).
 */
function refill(bytes: Buffer): void {
  if (process.platform !== 'win32' && readUrandom(bytes)) return;
  builtin('node:crypto').randomFillSync(bytes);
}

function readUrandom(bytes: Buffer): boolean {
  const fs = builtin('node:fs');
  let fd: number;
  try {
    fd = fs.openSync('/dev/urandom', 'r'); // libuv opens every file close-on-exec
  } catch {
    return false; // none here (a chroot, a sandbox): node:crypto then
  }
  try {
    for (let filled = 0; filled < bytes.length; ) {
      const read = fs.readSync(fd, bytes, filled, bytes.length - filled, null);
      if (read <= 0) return false;
      filled += read;
    }
    return true;
  } catch {
    return false;
  } finally {
    fs.closeSync(fd);
  }
}
