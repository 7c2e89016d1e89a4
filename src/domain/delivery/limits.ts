/**
 * Bounds of an endpoint's delivery limits that both the endpoint rules
 * (domain/endpoints.ts, which refuse values past them) and the scheduler's
 * lanes (delivery/lanes.ts, which enforce the limits) rely on.
 */

/**
 * The lowest rate limit an endpoint may have, in requests per second: one
 * request per 1,000 s. The API refuses lower ones, and a lane treats an
 * endpoint stored before that rule as this. At 1e-7/s the wait for the next
 * token was 1e10 ms, past what a Node timer can hold: it fired at once, over
 * and over.
 */
export const MIN_RATE_PER_SECOND = 0.001;
