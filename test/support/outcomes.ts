/**
 * Attempt outcomes as the scheduler hands them to the outcome writer, for
 * the tests of recordOutcomes and of the writer.
 */
import { DeliveryState } from "../../src/domain/delivery/state.js";
import type { AttemptOutcome, HealthRules } from "../../src/domain/delivery/outcome.js";
import type { TestDatabase } from "./database.js";
import { leasesOf } from "./rows.js";

/**
 * The lease token of an outcome made under no lease the queue holds: such
 * an outcome is kept as an attempt only. Tests of writes give the
 * delivery's own (see leasedOutcome).
 */
export const NO_LEASE = new Date(0);

/** Health rules that open no circuit and disable nothing unless a test asks. */
export const HEALTH_RULES: HealthRules = {
  circuitFailureThreshold: 5,
  circuitCooldownMs: 10_000,
  circuitMaxCooldownMs: 60_000,
  disableAfterMs: 86_400_000,
};

/** What an outcome says of the attempt: it succeeded, failed with a retry due after `retryInMs`, or failed for good. */
export type OutcomeKind = "succeeded" | "retry" | "failed";

/**
 * The outcome of attempt 1 of `deliveryId`: a 200, or a 500 with a retry
 * due in a second (or none, "failed"); `overrides` change any field. Its
 * lease is {@link NO_LEASE} unless given.
 */
export function attemptOutcome(
  deliveryId: string,
  endpointId: string,
  kind: OutcomeKind = "succeeded",
  overrides: Partial<AttemptOutcome> = {},
): AttemptOutcome {
  const success = kind === "succeeded";
  return {
    attemptId: `atm_${deliveryId}_1`,
    deliveryId,
    endpointId,
    attemptNumber: 1,
    startedAt: new Date(),
    durationMs: 5,
    responseStatus: success ? 200 : 500,
    errorClass: success ? "" : "http",
    error: success ? "" : "HTTP 500",
    responseBody: success ? "ok" : "down",
    responseHeaders: null,
    status: success ? DeliveryState.Succeeded : kind === "retry" ? DeliveryState.Retrying : DeliveryState.Failed,
    nextAttemptAt: kind === "retry" ? new Date(Date.now() + 1_000) : null,
    success,
    gone: false,
    leaseUntil: NO_LEASE,
    ...overrides,
  };
}

/**
 * {@link attemptOutcome}, made under the lease `deliveryId`'s queue row
 * holds now (its due time, the lease's token; {@link NO_LEASE} without a
 * queue row), as if this process had claimed it.
 */
export async function leasedOutcome(
  db: TestDatabase,
  deliveryId: string,
  endpointId: string,
  kind: OutcomeKind = "succeeded",
  overrides: Partial<AttemptOutcome> = {},
): Promise<AttemptOutcome> {
  const lease = (await leasesOf(db, [deliveryId])).get(deliveryId);
  return attemptOutcome(deliveryId, endpointId, kind, { leaseUntil: lease ?? NO_LEASE, ...overrides });
}
