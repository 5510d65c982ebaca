/**
 * What stops a write: a caller's `AbortSignal`, or a {@link Stopper} of the library's own. The
 * part of `AbortSignal` a write reads, so that either will do. @internal
 */
export interface StopSource {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void, options?: { readonly once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * An `AbortController` and its signal in one small object, for the library's own stops (a scope
 * disposed with writes in flight, a form's other files once one failed). Each request of an
 * upload server makes them: an `AbortController` costs an `EventTarget`, about a kilobyte that
 * lives as long as the request, and a request in flight when the young generation is collected
 * takes it to the old one (bench/analyses/uploads.md). A listener is called once, at the abort; any number may wait (a
 * scope's writes), with no warning past ten as an `EventTarget` gives.
 * @internal
 */
export class Stopper implements StopSource {
  aborted = false;
  reason: unknown = undefined;
  #listeners: Set<() => void> | undefined;

  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) return;
    (this.#listeners ??= new Set()).add(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    this.#listeners?.delete(listener);
  }

  /** Stops with `reason`, calling every listener once; a second call does nothing. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const listeners = this.#listeners;
    this.#listeners = undefined;
    for (const listener of listeners ?? []) {
      try {
        listener();
      } catch (error) {
        // As an EventTarget does: the other listeners are still called, the error is thrown after.
        queueMicrotask(() => {
          throw error;
        });
      }
    }
  }
}
