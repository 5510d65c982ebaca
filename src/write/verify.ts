// The `verify` hook of write() and of uploads: run on the complete file, raced against its
// timeout and the write's signals, and read so that only an explicit `true` accepts the file.
import { joinSignals } from '../base/any-signal.js';
import type { StopSource } from '../base/stopper.js';
import { InvalidOptionError, VerifyFailedError, VerifyRefusedError } from '../base/errors.js';
import { describe } from '../base/names.js';
import { MAX_TIMER_MS, validateDuration, validateFunction } from '../base/validators.js';

/** A `verify` hook's answer: `true` accepts; `false`, or a `reason` for the client and a 4xx `statusCode` (422 by default), refuses. */
export type VerifyResult =
  | boolean
  | {
      /** Why, sent to the client. */
      readonly reason: string;
      /** A 4xx status. @default 422 */
      readonly statusCode?: number;
    };

/** A `verify` hook: `signal` aborts when the check is given up (its timeout, the write's signal). @internal */
export type VerifyHook<F> = (file: F, signal: AbortSignal) => VerifyResult | PromiseLike<VerifyResult>;

/** The default of `verifyTimeoutMs`: one minute, long enough to scan a large upload. @internal */
export const DEFAULT_VERIFY_TIMEOUT_MS = 60_000;

/** The `verify` and `verifyTimeoutMs` options, checked. @internal */
export interface ResolvedVerify<F> {
  readonly hook: VerifyHook<F>;
  readonly timeoutMs: number;
}

/**
 * Checks `verify` and `verifyTimeoutMs` (0: no timeout of its own); `where` starts the message.
 * @internal
 */
export function resolveVerify<F>(verify: unknown, timeoutMs: unknown, where?: string): ResolvedVerify<F> | undefined {
  if (verify === undefined) {
    if (timeoutMs === undefined) return undefined;
    throw new InvalidOptionError('verifyTimeoutMs', `${where ? `${where}: ` : ''}\`verifyTimeoutMs\` goes with \`verify\`, the hook it bounds; got no \`verify\`.`);
  }
  const hook = validateFunction<VerifyHook<F>>(verify, 'verify', 'such as async (file, signal) => true (accept) or false (refuse)', { where });
  const timeout =
    timeoutMs === undefined
      ? DEFAULT_VERIFY_TIMEOUT_MS
      : validateDuration(timeoutMs, 'verifyTimeoutMs', { min: 1, max: MAX_TIMER_MS, off: { value: 0, meaning: 'no timeout of its own' } }, { where });
  return { hook, timeoutMs: timeout };
}

/**
 * Runs the hook on `file` and resolves only if it returned `true`. Rejects with a
 * `VerifyRefusedError` for a refusal, a `VerifyFailedError` for a throw or the timeout, what
 * `abortError` makes of a write's signal that aborted, and an `InvalidOptionError` for any
 * other result. The hook's own signal is aborted whenever the check is given up.
 * @internal
 */
export async function runVerify<F, S extends StopSource>(
  verify: ResolvedVerify<F>,
  file: F,
  signals: readonly S[],
  abortError: (signal: S) => Error,
): Promise<void> {
  const ours = new AbortController();
  const timer = verify.timeoutMs > 0 ? setTimeout(() => ours.abort(new VerifyFailedError('timeout', undefined, verify.timeoutMs)), verify.timeoutMs) : undefined;
  const { signal, release } = joinSignals([ours.signal, ...signals]);
  let stop: (() => void) | undefined;
  const stopped = new Promise<never>((_resolve, reject) => {
    stop = () => {
      const aborted = signals.find((s) => s.aborted);
      reject(aborted ? abortError(aborted) : (ours.signal.reason as Error));
    };
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  });
  stopped.catch(() => {}); // read by the race below, or dropped once the hook answered
  try {
    const result = await Promise.race([callHook(verify.hook, file, signal), stopped]);
    acceptOrThrow(result);
  } finally {
    clearTimeout(timer);
    if (stop) signal.removeEventListener('abort', stop);
    release();
  }
}

async function callHook<F>(hook: VerifyHook<F>, file: F, signal: AbortSignal): Promise<unknown> {
  try {
    return await hook(file, signal);
  } catch (err) {
    throw new VerifyFailedError('threw', err);
  }
}

function acceptOrThrow(result: unknown): void {
  if (result === true) return;
  if (result === false) throw new VerifyRefusedError('it did not pass the check');
  const refusal = typeof result === 'object' && result !== null ? (result as { readonly reason?: unknown; readonly statusCode?: unknown }) : undefined;
  const status = refusal?.statusCode ?? 422;
  if (typeof refusal?.reason === 'string' && refusal.reason !== '' && Number.isInteger(status) && (status as number) >= 400 && (status as number) <= 499) {
    throw new VerifyRefusedError(refusal.reason, status as number);
  }
  throw new InvalidOptionError(
    'verify',
    `\`verify\` returned ${describe(result)}: return true to accept the file, false or { reason, statusCode } (a 4xx) to refuse it. The file was removed.`,
  );
}
