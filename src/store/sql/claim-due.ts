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
 * tokens, 1 for ordered endpoints and half-open circuits), and each tenant at
 * most its tenant's room (see lanes.ts: fair shares of the process), so a
 * slow endpoint or tenant never fills the claim with work that would only
 * wait. Endpoints and tenants with no room here, and endpoints whose circuit
 * takes nothing now (open, or a probe in flight, as the scheduler knows from
 * its own outcomes and claims and from its heartbeat's sweep), are left out
 * of the index scan itself: a window is only useful if its rows can be
 * taken, and a window full of rows of blocked endpoints would stall every
 * other endpoint until they unblock (it did: 27-28 s, until a circuit's
 * cool-down ended, when a publish raced the opening of four circuits and
 * 2,000 of their rows stayed due; see circuit-holds.ts for how such rows are
 * put out of the way).
 *
 * The exclusions are constants of each claim's plan (arrays of ids), not a
 * subquery: with `<> ALL (ARRAY(SELECT ...))` the planner, unable to see
 * the array, estimated one matching row on a one-endpoint backlog and read
 * the whole table instead of the due index (30 ms for 50,000 rows against
 * under 1 ms).
 *
 * Claiming a half-open circuit's probe records its lease end on the endpoint
 * (`circuit_probe_until`), in the same statement, so that no process claims
 * another delivery of it until the probe's outcome is known.
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
import type { ClaimedDelivery } from "../../domain/delivery/claimed-delivery.js";
import { type ClaimedRow, claimedDelivery } from "../claimed-row.js";
import type { Sql } from "../sql.js";
import { endpointFree, type LeaseRoom, leaseEnd, notExcluded, Params, roomTables, tenantFree } from "./lease-room.js";

export type { TenantRoom } from "./lease-room.js";

/** Parameters of {@link claimDue}: this process's room, and which rows to look at. */
export interface ClaimRequest extends LeaseRoom {
  /** Rows to claim at most. */
  limit: number;
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
 * The candidate rows: due, live, and of endpoints and tenants that can take
 * work. `window` reads the earliest `lookahead` of them from the due index;
 * `byId` only the given deliveries.
 */
function candidates(p: Params, req: ClaimRequest, lookahead: number): string {
  const filters = `q.due_at <= now()
    AND ${notExcluded(p, req, "q.endpoint_id", "q.tenant_id")}`;
  const columns = "q.delivery_id AS id, q.endpoint_id, q.tenant_id, q.seq, q.due_at";
  if (req.ids !== undefined) {
    return `SELECT ${columns} FROM delivery_queue q
  WHERE q.delivery_id = ANY (${p.add(req.ids, "text[]")}) AND ${filters}`;
  }
  return `SELECT ${columns} FROM delivery_queue q
  WHERE ${filters}
  ORDER BY q.due_at
  LIMIT ${lookahead}`;
}

/**
 * The claim statement (see the module comment), assembled from named
 * pieces. The row limit and window are written into the text as constants
 * (powers of two, so there are few variants), so the planner knows them: as
 * parameters, the cached generic plan took 12-14 ms on a 20,000-row backlog,
 * against 2.5-3.4 ms planned afresh. Only the by-id variant is prepared (see
 * claimDue).
 */
function claimStatement(req: ClaimRequest, limit: number, lookahead: number): { text: string; values: unknown[] } {
  const p = new Params();
  const threshold = p.add(req.circuitFailureThreshold, "int");
  const text = `
WITH ${roomTables(p, req)},
candidates AS (
  ${candidates(p, req, lookahead)}
),
-- Each endpoint's rows in due order, and how many it may take: 1 when
-- ordered or probing a half-open circuit, else its free room here (for an
-- endpoint with no work here, its share of its limit within its fair share
-- of its tenant's), within its rate limit.
ranked AS (
  SELECT c.id, c.tenant_id, c.due_at, c.seq,
    row_number() OVER (PARTITION BY c.endpoint_id ORDER BY c.due_at, c.seq) AS rank,
    CASE
      WHEN ep.ordered OR ep.consecutive_failures >= ${threshold} THEN 1
      ELSE ${endpointFree(p, req, "ep", "l", "t")}
    END AS free
  FROM candidates c
  JOIN endpoints ep ON ep.id = c.endpoint_id
  LEFT JOIN lanes l ON l.endpoint_id = c.endpoint_id
  LEFT JOIN tenants t ON t.tenant_id = c.tenant_id
  WHERE NOT ep.disabled
    -- Blocked endpoints the scheduler did not know of yet.
    AND (ep.circuit_open_until IS NULL OR ep.circuit_open_until <= now())
    AND (ep.circuit_probe_until IS NULL OR ep.circuit_probe_until <= now())
    -- An ordered endpoint's head only: the lowest seq of its queue. (A
    -- min(), which the planner reads off delivery_queue_endpoint_idx
    -- whatever the statistics; "NOT EXISTS (... p.seq < c.seq)" was planned
    -- as a scan of the whole queue on a one-endpoint backlog.)
    AND (NOT ep.ordered OR c.seq = (SELECT min(p.seq) FROM delivery_queue p WHERE p.endpoint_id = c.endpoint_id))
),
-- Of those, each tenant's in due order, within the tenant's room here.
eligible AS (
  SELECT r.id,
    row_number() OVER (PARTITION BY r.tenant_id ORDER BY r.due_at, r.seq) AS tenant_rank,
    ${tenantFree(p, req, "t")} AS tenant_free
  FROM ranked r
  LEFT JOIN tenants t ON t.tenant_id = r.tenant_id
  WHERE r.rank <= r.free
),
due AS (
  SELECT q.delivery_id
  FROM delivery_queue q
  WHERE q.delivery_id IN (SELECT id FROM eligible WHERE tenant_rank <= tenant_free)
    AND q.due_at <= now()
  ORDER BY q.due_at
  LIMIT ${limit}
  FOR UPDATE OF q SKIP LOCKED
),
claimed AS (
  UPDATE delivery_queue q
  SET locked_by = ${p.add(req.workerId, "text")},
      due_at = ${leaseEnd(p, req, "ep")}
  -- The event through the history row (primary keys): the queue row does
  -- not copy the event's id (see the migration queue_without_event).
  FROM due, deliveries d, events e, endpoints ep
  WHERE q.delivery_id = due.delivery_id AND d.id = q.delivery_id AND e.id = d.event_id AND ep.id = q.endpoint_id
  RETURNING q.delivery_id AS id, d.event_id, q.endpoint_id, q.tenant_id, e.event_type, q.attempt_count, q.due_at AS next_attempt_at,
    e.body, ep.url, ep.headers, ep.secrets, ep.signature_scheme, ep.retry_policy, ep.timeout_ms,
    ep.max_in_flight, ep.rate_limit_per_second, ep.ordered, ep.consecutive_failures >= ${threshold} AS probe
),
-- A half-open circuit's probe: nothing else of its endpoint until its lease ends.
probing AS (
  UPDATE endpoints ep SET circuit_probe_until = c.next_attempt_at
  FROM claimed c
  WHERE c.probe AND ep.id = c.endpoint_id
)
SELECT c.*, ${req.ids === undefined ? rowsLeft(limit, lookahead) : "NULL::bool"} AS rows_left FROM claimed c`;
  return { text, values: p.values };
}

/**
 * Whether a window claim left due rows it could see behind: rows of an
 * endpoint or tenant beyond its room here, eligible rows beyond the row
 * limit, or a window read whole (more may be due past it). Rows of excluded
 * endpoints are not in the window; the scheduler knows those itself.
 * (Uncorrelated: each is computed once, after the window's CTEs.)
 */
function rowsLeft(limit: number, lookahead: number): string {
  return `(EXISTS (SELECT 1 FROM ranked r WHERE r.rank > r.free)
    OR EXISTS (SELECT 1 FROM eligible g WHERE g.tenant_rank > g.tenant_free)
    OR (SELECT count(*) FROM eligible g WHERE g.tenant_rank <= g.tenant_free) > ${limit}
    OR (SELECT count(*) FROM candidates) >= ${lookahead})`;
}

/** The largest power of two not above `n` (at least 1). */
function powerOfTwoBelow(n: number): number {
  return 2 ** Math.floor(Math.log2(Math.max(1, n)));
}

/** A claimed row: the shared columns (see ../claimed-row.ts) and the claim's own. */
interface Row extends ClaimedRow {
  id: string;
  event_id: string;
  attempt_count: number;
  /** The lease's end, as text. */
  next_attempt_at: string;
  body: string;
  /** See rowsLeft (the same on every row; NULL by id). */
  rows_left: boolean | null;
}

/** What a claim took, and whether it saw due rows it left for want of room (see rowsLeft). */
export interface Claim {
  claimed: ClaimedDelivery[];
  /**
   * A claim over the window left due rows behind for want of room here (or
   * read its window whole): once room frees, another may take them. False
   * when it took nothing (every row it could see it could not take for
   * reasons room does not change: locked, parked, blocked) and for a claim by id.
   */
  rowsLeft: boolean;
}

/** Claims up to `req.limit` due deliveries, fairly across endpoints (see the module comment). */
export async function claimDue(sql: Sql, req: ClaimRequest): Promise<ClaimedDelivery[]> {
  return (await claim(sql, req)).claimed;
}

/** {@link claimDue}, telling also whether due rows were left behind (see Claim). */
export async function claim(sql: Sql, req: ClaimRequest): Promise<Claim> {
  // By id, the candidates are only the ids given: round up so none is cut.
  const limit = req.ids !== undefined ? 2 ** Math.ceil(Math.log2(Math.max(1, req.limit))) : powerOfTwoBelow(req.limit);
  const lookahead = Math.max(limit, powerOfTwoBelow(req.lookahead));
  const { text, values } = claimStatement(req, limit, lookahead);
  // Prepared (planned once per connection) only by id. The window claim's
  // cached generic plan, which PostgreSQL switches to after five runs, was
  // 2.4x slower than planning afresh on a 100,000-row backlog (182 against
  // 75 us per claimed row, 256 per claim); planning costs about 1 ms.
  const rows = await sql.query<Row>(text, values, req.ids !== undefined);
  return {
    claimed: rows.map((r) => claimedDelivery(r, r.id, r.event_id, r.body, r.attempt_count + 1, r.next_attempt_at)),
    rowsLeft: rows[0]?.rows_left === true,
  };
}
