/**
 * Claims due deliveries for this process: one statement that picks rows with
 * `FOR UPDATE SKIP LOCKED` (so concurrent schedulers never take the same row
 * and never wait for each other) and stamps the lease in the same UPDATE,
 * returning everything the dispatch needs (event body, endpoint address,
 * secrets, limits) so no second query is made.
 *
 * The lease is `locked_by` plus `next_attempt_at` moved to the lease's expiry
 * (the endpoint's request timeout plus a margin for writing the outcome, so
 * a slow request can never outlive its lease and be sent twice at once): if
 * this process dies mid-attempt the row simply becomes due again when the
 * lease runs out, and any scheduler claims it. At-least-once, never lost.
 *
 * Fairness is decided here, not after claiming: of the earliest due rows
 * (a look-ahead window), each endpoint gets at most its free capacity in this
 * process (its in-flight share minus what is in flight here, its rate-limit
 * tokens, 1 for ordered endpoints and half-open circuits), so a slow endpoint
 * never fills the claim with work that would only wait. Endpoints with no free
 * capacity here are excluded from the index scan itself.
 *
 * Plan, checked with EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL 18 with
 * 100,000 due and 50,000 finished deliveries over 50 endpoints: the
 * candidates are an Index Scan on `deliveries_due_idx` under a Limit (800
 * rows, no sort, 0.5 ms; finished rows are not in the partial index); the 50
 * endpoints are hash-joined; the ordered-endpoint check would probe
 * `deliveries_endpoint_live_idx` (an index-only scan) for ordered endpoints
 * only; the lock step re-reads the ~480 eligible rows by primary key. Claiming
 * 100 rows took 8.7 ms in all, 12-17 ms seen from the client. The statement
 * is its own short transaction.
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
  /** The endpoint's in-flight limit; null means the server default. */
  maxInFlight: number | null;
  /** The endpoint's rate limit in requests per second; null means none. */
  rateLimitPerSecond: number | null;
  ordered: boolean;
  /** The endpoint's circuit is half-open: this attempt is the probe. */
  probe: boolean;
  /** When this process's lease on the delivery ends. */
  leaseUntil: Date;
}

/** Parameters of {@link claimDue}. */
export interface ClaimRequest {
  workerId: string;
  /** Rows to claim at most. */
  limit: number;
  leaseMarginMs: number;
  defaultTimeoutMs: number;
  /** Endpoints with no free capacity in this process. */
  exclude: readonly string[];
  /** Endpoints with some work in flight here, and how many more each may take. */
  laneFree: ReadonlyMap<string, number>;
  /** In-flight limit of endpoints that set none. */
  defaultMaxInFlight: number;
  /** Live scheduler processes, over which endpoint limits are shared. */
  workers: number;
  /** Consecutive failures that open a circuit. */
  circuitFailureThreshold: number;
  /**
   * Claim among these deliveries only (just published by this process)
   * instead of a window over all due rows: a primary-key read, for latency.
   */
  ids?: readonly string[];
  /**
   * Due rows to look at (the window). It must exceed `limit` so that
   * endpoints near their limit do not crowd out the others, and it is the
   * claim's main cost in PostgreSQL (the window is read whole); the
   * scheduler sizes it by how much of the last window was usable.
   */
  lookahead: number;
}

/**
 * The claim statement for a given row limit and window. Both are written
 * into the text as constants (powers of two, so there are few variants), so
 * the planner knows them: as parameters, the cached generic plan took
 * 12-14 ms on a 20,000-row backlog, against 2.5-3.4 ms planned afresh. Only
 * the by-id variant is prepared (see claimDue).
 */
function claimStatement(limit: number, lookahead: number, byId: boolean): string {
  // By id: the candidates are given deliveries (just published here) instead
  // of a window over the due index; every other rule stays the same.
  const base = byId
    ? CLAIM_DUE.replace("WHERE d.status IN (1, 2) AND d.next_attempt_at <= now()\n    AND d.endpoint_id <> ALL ($5::text[])\n  ORDER BY d.next_attempt_at\n  LIMIT $11", "WHERE d.id = ANY ($11::text[]) AND d.status IN (1, 2) AND d.next_attempt_at <= now()\n    AND d.endpoint_id <> ALL ($5::text[])")
    : CLAIM_DUE;
  if (byId && base === CLAIM_DUE) throw new Error("claim statement changed: update claimStatement");
  return (
    base
      .replace("LIMIT $11", `LIMIT ${lookahead}`)
      .replace("LIMIT $2\n", `LIMIT ${limit}\n`)
      // $3..$11 become $2..$10.
      .replace(/\$(\d+)/g, (_, n: string) => `$${Number(n) > 2 ? Number(n) - 1 : n}`)
  );
}

/** The largest power of two not above `n` (at least 1). */
function powerOfTwoBelow(n: number): number {
  return 2 ** Math.floor(Math.log2(Math.max(1, n)));
}

const CLAIM_DUE = `
WITH lanes AS (
  SELECT * FROM unnest($6::text[], $7::int[]) AS l (endpoint_id, free)
),
candidates AS (
  SELECT d.id, d.endpoint_id, d.seq, d.next_attempt_at
  FROM deliveries d
  WHERE d.status IN (1, 2) AND d.next_attempt_at <= now()
    AND d.endpoint_id <> ALL ($5::text[])
  ORDER BY d.next_attempt_at
  LIMIT $11
),
eligible AS (
  SELECT c.id,
    row_number() OVER (PARTITION BY c.endpoint_id ORDER BY c.next_attempt_at, c.seq) AS rank,
    CASE
      WHEN ep.ordered OR ep.consecutive_failures >= $10 THEN 1
      ELSE least(
        coalesce(l.free, ceil(coalesce(ep.max_in_flight, $8)::float8 / $9)::int),
        CASE WHEN ep.rate_limit_per_second IS NULL THEN 2147483647
             ELSE greatest(1, floor(ep.rate_limit_per_second / $9))::int END)
    END AS free
  FROM candidates c
  JOIN endpoints ep ON ep.id = c.endpoint_id
  LEFT JOIN lanes l ON l.endpoint_id = c.endpoint_id
  WHERE NOT ep.disabled
    AND (ep.circuit_open_until IS NULL OR ep.circuit_open_until <= now())
    AND (NOT ep.ordered OR NOT EXISTS (
      SELECT 1 FROM deliveries p
      WHERE p.endpoint_id = c.endpoint_id AND p.status IN (1, 2) AND p.seq < c.seq))
    -- A half-open circuit sends one probe: none while another is in flight.
    AND (ep.consecutive_failures < $10 OR NOT EXISTS (
      SELECT 1 FROM deliveries q
      WHERE q.endpoint_id = c.endpoint_id AND q.status IN (1, 2) AND q.locked_by IS NOT NULL))
),
due AS (
  SELECT d.id
  FROM deliveries d
  WHERE d.id IN (SELECT id FROM eligible WHERE rank <= free)
    AND d.status IN (1, 2) AND d.next_attempt_at <= now()
  ORDER BY d.next_attempt_at
  LIMIT $2
  FOR UPDATE OF d SKIP LOCKED
)
UPDATE deliveries d
SET locked_by = $1,
    next_attempt_at = now() + make_interval(secs => (coalesce(ep.timeout_ms, $4) + $3)::float8 / 1000)
FROM due, events e, endpoints ep
WHERE d.id = due.id AND e.id = d.event_id AND ep.id = d.endpoint_id
RETURNING d.id, d.event_id, d.endpoint_id, d.tenant_id, d.event_type, d.attempt_count, d.next_attempt_at,
  e.body, ep.url, ep.headers, ep.secrets, ep.signature_scheme, ep.retry_policy, ep.timeout_ms,
  ep.max_in_flight, ep.rate_limit_per_second, ep.ordered, ep.consecutive_failures >= $10 AS probe`;

interface Row {
  id: string;
  event_id: string;
  endpoint_id: string;
  tenant_id: string;
  event_type: string;
  attempt_count: number;
  /** Text: the ORM's pool leaves timestamps unparsed. */
  next_attempt_at: string;
  body: string;
  url: string;
  headers: Record<string, string>;
  secrets: StoredSecret[];
  signature_scheme: "standard-webhooks" | "github";
  retry_policy: StoredRetryPolicy | null;
  timeout_ms: number | null;
  max_in_flight: number | null;
  rate_limit_per_second: number | null;
  ordered: boolean;
  probe: boolean;
}

/** Claims up to `req.limit` due deliveries, fairly across endpoints (see the module comment). */
export async function claimDue(sql: Sql, req: ClaimRequest): Promise<ClaimedDelivery[]> {
  // By id, the candidates are only the ids given: round up so none is cut.
  const limit = req.ids !== undefined ? 2 ** Math.ceil(Math.log2(Math.max(1, req.limit))) : powerOfTwoBelow(req.limit);
  const lookahead = Math.max(limit, powerOfTwoBelow(req.lookahead));
  const rows = await sql.query<Row>(claimStatement(limit, lookahead, req.ids !== undefined), [
    req.workerId,
    req.leaseMarginMs,
    req.defaultTimeoutMs,
    req.exclude,
    [...req.laneFree.keys()],
    [...req.laneFree.values()],
    req.defaultMaxInFlight,
    Math.max(1, req.workers),
    req.circuitFailureThreshold,
    ...(req.ids !== undefined ? [req.ids] : []),
    // Prepared (planned once per connection) only by id. The window claim's
    // cached generic plan, which PostgreSQL switches to after five runs, was
    // 2.4x slower than planning afresh on a 100,000-row backlog (182 against
    // 75 us per claimed row, 256 per claim); planning costs about 1 ms.
  ], req.ids !== undefined);
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
    maxInFlight: r.max_in_flight,
    rateLimitPerSecond: r.rate_limit_per_second,
    ordered: r.ordered,
    probe: r.probe,
    leaseUntil: new Date(r.next_attempt_at),
  }));
}
