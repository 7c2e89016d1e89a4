/**
 * An endpoint's retry policy as stored (`endpoints.retry_policy`, jsonb) and
 * as the delivery engine reads it. delivery/backoff.ts turns it into delays;
 * domain/endpoints.ts validates it; api/convert.ts maps it to and from the
 * API's `RetryPolicy`.
 */

/** A stored retry policy; null on the endpoint means the server default. */
export type StoredRetryPolicy =
  | { kind: "schedule"; delaysMs: number[] }
  | { kind: "exponential"; baseMs: number; capMs: number; maxAttempts: number };
