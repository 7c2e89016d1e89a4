/** Deliveries as a claim or a leasing publish hands them to the scheduler, for the tests of its units. */
import type { ClaimedDelivery } from "../../src/domain/delivery/claimed-delivery.js";

let made = 0;

/**
 * Attempt 1 of a small event to endpoint "ep" of tenant "t", leased for an
 * hour, with no limits; `fields` change any of it. Ids are new each call.
 */
export function sampleClaimed(fields: Partial<ClaimedDelivery> = {}): ClaimedDelivery {
  return {
    id: `dlv_${++made}`,
    eventId: "evt_1",
    endpointId: "ep",
    tenantId: "t",
    eventType: "t.e",
    attemptNumber: 1,
    body: "{}",
    url: "http://127.0.0.1/",
    headers: {},
    secrets: [],
    signatureScheme: "standard-webhooks",
    retryPolicy: null,
    timeoutMs: null,
    maxInFlight: null,
    rateLimitPerSecond: null,
    ordered: false,
    probe: false,
    leaseUntil: new Date(Date.now() + 3_600_000),
    ...fields,
  };
}
