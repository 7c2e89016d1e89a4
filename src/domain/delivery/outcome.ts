/**
 * What an attempt ended with, and what a batch of outcomes did to endpoint
 * health: the delivery stages produce these (delivery/dispatch.ts) and the
 * outcome writer stores them (store/sql/record-outcomes.ts).
 */
import type { DeliveryState } from "./state.js";

/** The outcome of one attempt and the delivery state it leads to. */
export interface AttemptOutcome {
  attemptId: string;
  deliveryId: string;
  endpointId: string;
  attemptNumber: number;
  startedAt: Date;
  durationMs: number;
  responseStatus: number;
  errorClass: string;
  error: string;
  responseBody: string;
  responseHeaders: Record<string, string> | null;
  /** The delivery's new status (see statusAfterAttempt in state.ts). */
  status: DeliveryState;
  /** When the next attempt is due; null once the delivery has ended. */
  nextAttemptAt: Date | null;
  /** The attempt succeeded (2xx). */
  success: boolean;
  /** The endpoint answered 410 Gone: disable it. */
  gone: boolean;
  /** The end of the lease the attempt was made under, its token (see ClaimedDelivery.leaseUntil). */
  leaseUntil: Date;
}

/** How endpoint health is judged. */
export interface HealthRules {
  /** Consecutive failures that open the circuit. */
  circuitFailureThreshold: number;
  /** First cool-down; doubles with every further failure, up to the max. */
  circuitCooldownMs: number;
  /** Longest cool-down. */
  circuitMaxCooldownMs: number;
  /** Disable an endpoint failing without a success for this long. */
  disableAfterMs: number;
}

/** What a batch of outcomes did to endpoints, for the follow-ups the scheduler runs. */
export interface HealthChanges {
  /** Endpoints whose circuit opened now, with when it closes. */
  opened: { endpointId: string; until: Date }[];
  /** Endpoints whose circuit closed now (a probe succeeded), with how long it held their deliveries at most. */
  closed: { endpointId: string; heldUntil: Date }[];
  /** Endpoints disabled now, with the reason. */
  disabled: { endpointId: string; reason: string }[];
}
