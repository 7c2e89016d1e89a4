/**
 * The columns of a delivery leased to this process, as both statements that
 * lease return them (the claim, sql/claim-due.ts, and the publish,
 * sql/insert-events.ts), and the one mapping of them into a
 * {@link ClaimedDelivery}. The two statements name the delivery, its event
 * and the lease's end differently (and the publish has the body already),
 * so those are passed apart.
 */
import type { ClaimedDelivery, StoredSecret } from "../domain/delivery/claimed-delivery.js";
import type { StoredRetryPolicy } from "../domain/delivery/retry-policy.js";

/** The endpoint and event columns of a leased delivery's row. */
export interface ClaimedRow {
  endpoint_id: string;
  tenant_id: string;
  event_type: string;
  url: string;
  headers: Record<string, string>;
  secrets: StoredSecret[];
  signature_scheme: "standard-webhooks" | "github";
  retry_policy: StoredRetryPolicy | null;
  timeout_ms: number | null;
  max_in_flight: number | null;
  /**
   * Only the claim returns these three: the publish never leases deliveries
   * of rate-limited or ordered endpoints, nor a half-open circuit's probe.
   */
  rate_limit_per_second?: number | null;
  ordered?: boolean;
  probe?: boolean;
}

/**
 * The claimed delivery `id` (of event `eventId`, with its `body`) from its
 * row: its `attemptNumber`, and `leaseUntil` as the statement returned it
 * (text: the ORM's pool leaves timestamps unparsed).
 */
export function claimedDelivery(
  row: ClaimedRow,
  id: string,
  eventId: string,
  body: string,
  attemptNumber: number,
  leaseUntil: string,
): ClaimedDelivery {
  return {
    id,
    eventId,
    endpointId: row.endpoint_id,
    tenantId: row.tenant_id,
    eventType: row.event_type,
    attemptNumber,
    body,
    url: row.url,
    headers: row.headers,
    secrets: row.secrets,
    signatureScheme: row.signature_scheme,
    retryPolicy: row.retry_policy,
    timeoutMs: row.timeout_ms,
    maxInFlight: row.max_in_flight,
    rateLimitPerSecond: row.rate_limit_per_second ?? null,
    ordered: row.ordered ?? false,
    probe: row.probe ?? false,
    leaseUntil: new Date(leaseUntil),
  };
}
