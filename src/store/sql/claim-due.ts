/**
 * Claims due deliveries for this process: one statement that picks rows with
 * `FOR UPDATE SKIP LOCKED` (so concurrent schedulers never take the same row)
 * and stamps the lease in the same UPDATE, returning everything the dispatch
 * needs (event body, endpoint address and secrets) so no second query is made.
 *
 * The lease is `locked_by` plus `next_attempt_at` moved to the lease's expiry
 * (the endpoint's request timeout plus a margin for writing the outcome, so
 * a slow request can never outlive its lease and be sent twice at once):
 * if this process dies mid-attempt the row simply becomes due again when the
 * lease runs out, and any scheduler claims it. At-least-once, never lost.
 *
 * The inner SELECT walks `deliveries_due_idx` (partial, on next_attempt_at,
 * status IN (1, 2)) in order and stops after LIMIT rows: EXPLAIN shows an
 * Index Scan on deliveries_due_idx under a LockRows node, with no sort.
 */
import type { StoredRetryPolicy, StoredSecret } from "../entities/index.js";
import type { Sql } from "../sql.js";

/** A claimed delivery with what its dispatch needs. */
export interface ClaimedDelivery {
  id: string;
  eventId: string;
  endpointId: string;
  tenantId: string;
  eventType: string;
  /** The number of this attempt (1 for the first). */
  attemptNumber: number;
  body: string;
  url: string;
  headers: Record<string, string>;
  secrets: StoredSecret[];
  signatureScheme: "standard-webhooks" | "github";
  retryPolicy: StoredRetryPolicy | null;
  timeoutMs: number | null;
}

const CLAIM_DUE = `
WITH due AS (
  SELECT d.id
  FROM deliveries d
  WHERE d.status IN (1, 2) AND d.next_attempt_at <= now()
    -- A disabled endpoint's deliveries wait (they keep their attempts).
    AND NOT EXISTS (SELECT 1 FROM endpoints ep WHERE ep.id = d.endpoint_id AND ep.disabled)
  ORDER BY d.next_attempt_at
  LIMIT $2
  FOR UPDATE OF d SKIP LOCKED
)
UPDATE deliveries d
SET locked_by = $1,
    next_attempt_at = now() + make_interval(secs => (coalesce(ep.timeout_ms, $4) + $3)::float8 / 1000)
FROM due, events e, endpoints ep
WHERE d.id = due.id AND e.id = d.event_id AND ep.id = d.endpoint_id
RETURNING d.id, d.event_id, d.endpoint_id, d.tenant_id, d.event_type, d.attempt_count,
  e.body, ep.url, ep.headers, ep.secrets, ep.signature_scheme, ep.retry_policy, ep.timeout_ms`;

interface Row {
  id: string;
  event_id: string;
  endpoint_id: string;
  tenant_id: string;
  event_type: string;
  attempt_count: number;
  body: string;
  url: string;
  headers: Record<string, string>;
  secrets: StoredSecret[];
  signature_scheme: "standard-webhooks" | "github";
  retry_policy: StoredRetryPolicy | null;
  timeout_ms: number | null;
}

/**
 * Claims up to `limit` due deliveries for `workerId`, each leased for its
 * endpoint's timeout (or `defaultTimeoutMs`) plus `leaseMarginMs`.
 */
export async function claimDue(
  sql: Sql,
  workerId: string,
  limit: number,
  leaseMarginMs: number,
  defaultTimeoutMs: number,
): Promise<ClaimedDelivery[]> {
  const rows = await sql.query<Row>(CLAIM_DUE, [workerId, limit, leaseMarginMs, defaultTimeoutMs]);
  return rows.map((r) => ({
    id: r.id,
    eventId: r.event_id,
    endpointId: r.endpoint_id,
    tenantId: r.tenant_id,
    eventType: r.event_type,
    attemptNumber: r.attempt_count + 1,
    body: r.body,
    url: r.url,
    headers: r.headers,
    secrets: r.secrets,
    signatureScheme: r.signature_scheme,
    retryPolicy: r.retry_policy,
    timeoutMs: r.timeout_ms,
  }));
}
