/**
 * The retry schedule: one pure function from (policy, attempt number) to the
 * delay before the next attempt, or null when the delivery is given up.
 */
import type { StoredRetryPolicy } from "../store/entities/index.js";

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

/** Total attempts a policy allows, the first included. */
export function maxAttempts(policy: StoredRetryPolicy): number {
  return policy.kind === "schedule" ? policy.delaysMs.length + 1 : policy.maxAttempts;
}
