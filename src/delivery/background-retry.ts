/**
 * How the delivery wing retries its background writes (attempt outcomes,
 * leases given back): a transient database error (see
 * store/database-errors.ts) is retried after a backoff that doubles from
 * RETRY_FIRST_MS to RETRY_MAX_MS; a permanent one ends the retries at once,
 * for the caller to deal with (the outcome writer isolates the outcome
 * that cannot be written; a lease that cannot be given back expires by
 * itself); and so does the caller's signal, when a stop cannot wait longer.
 */
import { classifyDatabaseError } from "../store/database-errors.js";

/** The first wait before a retry; each further one doubles, up to RETRY_MAX_MS. */
export const RETRY_FIRST_MS = 100;
/** The longest wait before a retry: what a write waits at most once the database is back. */
export const RETRY_MAX_MS = 5_000;

/** The wait before retry number `failures` (1 for the first). */
export function retryDelayMs(failures: number): number {
  return Math.min(RETRY_MAX_MS, RETRY_FIRST_MS * 2 ** (failures - 1));
}

/** Options of {@link retryTransient}. */
export interface RetryOptions {
  /** Ends the retries: the wait before the next one ends at once and the last error is thrown. */
  signal?: AbortSignal;
  /** Told of each transient failure, before the wait for the retry. */
  onRetry?: (err: unknown, failures: number, delayMs: number) => void;
}

/**
 * Runs `write` until it succeeds, retrying transient errors with backoff.
 * Throws a permanent error at once, and the last error once `signal`
 * aborts. A write already running when the signal aborts is not stopped
 * (a statement cannot be taken back): its result stands.
 */
export async function retryTransient<T>(write: () => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const { signal, onRetry } = options;
  for (let failures = 1; ; failures++) {
    try {
      return await write();
    } catch (err) {
      if (signal?.aborted || classifyDatabaseError(err) === "permanent") throw err;
      const delayMs = retryDelayMs(failures);
      onRetry?.(err, failures, delayMs);
      await wait(delayMs, signal);
      if (signal?.aborted) throw err;
    }
  }
}

/** Resolves after `ms`, or as soon as `signal` aborts. */
function wait(ms: number, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
