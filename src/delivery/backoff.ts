/**
 * The retry schedule: one pure function from (policy, attempt number) to the
 * delay before the next attempt, or null when the delivery is given up.
 */
import type { StoredRetryPolicy } from "../domain/delivery/retry-policy.js";

/**
 * Returns the delay in ms before the attempt after attempt `attemptNumber`
 * (1-based), or null when `attemptNumber` was the last one allowed.
 *
 * `jitter` spreads the delay by +-that fraction (0.2 = +-20 %) so that
 * deliveries failed together do not retry together; `random` is injectable
 * for tests and returns a number in [0, 1).
 */
export function retryDelay(
  policy: StoredRetryPolicy,
  attemptNumber: number,
  jitter: number,
  random: () => number = Math.random,
): number | null {
  let base: number;
  if (policy.kind === "schedule") {
    const delay = policy.delaysMs[attemptNumber - 1];
    if (delay === undefined) return null;
    base = delay;
  } else {
    if (attemptNumber >= policy.maxAttempts) return null;
    base = Math.min(policy.capMs, policy.baseMs * 2 ** (attemptNumber - 1));
  }
  const spread = 1 + jitter * (2 * random() - 1);
  return Math.max(0, Math.round(base * spread));
}


/**
 * Parses a `Retry-After` header: delay-seconds or an HTTP date. Returns the
 * delay in ms from `now` (0 for a date in the past), or undefined when absent
 * or malformed.
 */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at) || !/[a-z]/i.test(text)) return undefined;
  return Math.max(0, at - now);
}

/** What, besides the policy, decides a retry's delay. */
export interface RetryRules {
  /** Jitter fraction (0.2 = +-20 %). */
  jitter: number;
  /** Least delay after a timeout or a 429. */
  throttleMinDelayMs: number;
  /** Longest delay a Retry-After may ask for. */
  retryAfterCapMs: number;
}

/**
 * The delay before the next attempt after a failed one, or null when the
 * policy is exhausted. The policy's delay is the floor; a `Retry-After` on a
 * 429 or 503 may lengthen it, up to the cap; a timeout or 429 waits at least
 * the throttle minimum.
 */
export function failureDelay(
  policy: StoredRetryPolicy,
  attemptNumber: number,
  failure: { status: number; timeout: boolean; retryAfterMs: number | undefined },
  rules: RetryRules,
  random: () => number = Math.random,
): number | null {
  let delay = retryDelay(policy, attemptNumber, rules.jitter, random);
  if (delay === null) return null;
  if ((failure.status === 429 || failure.status === 503) && failure.retryAfterMs !== undefined) {
    delay = Math.max(delay, Math.min(failure.retryAfterMs, rules.retryAfterCapMs));
  }
  if (failure.timeout || failure.status === 429) delay = Math.max(delay, rules.throttleMinDelayMs);
  return delay;
}
