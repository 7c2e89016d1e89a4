/**
 * The publish hot path: store events and fan them out to their endpoints in
 * ONE statement.
 *
 * One statement is one round trip and atomic without BEGIN/COMMIT, so a batch
 * of 1,000 events with all their deliveries is all or nothing, and a single
 * Publish costs one query. The fan-out is set based (INSERT ... SELECT joined
 * against the tenant's endpoints), never a loop per row; delivery ids come
 * are derived in SQL from the event and endpoint (see the statement). Each
 * delivery gets its history row (`deliveries`) and its row in the live queue
 * (`delivery_queue`, see the migration delivery_queue), whose AFTER INSERT
 * trigger notifies the schedulers on commit.
 */
import type { ClaimedDelivery } from "../../domain/delivery/claimed-delivery.js";
import { DeliveryEvent } from "../../domain/delivery/state.js";
import { type ClaimedRow, claimedDelivery } from "../claimed-row.js";
import type { Sql } from "../sql.js";
import { endpointFree, type LeaseRoom, leaseEnd, notExcluded, Params, roomTables, tenantFree } from "./lease-room.js";
import { sqlTransition } from "./states.js";

/** A new delivery starts PENDING, logged CREATED (see the state machine). */
const CREATED = sqlTransition(DeliveryEvent.Created);

/** Inputs up to this many rows run as prepared statements (see Sql.query). */
const SMALL = 8;

/** One event to store. */
export interface NewEvent {
  id: string;
  tenantId: string;
  eventType: string;
  channels: string[];
  idempotencyKey: string | null;
  body: string;
  /** The payload's JSON text (inside `body`), for schema checks. */
  data: string;
}

/** What was stored for one event. */
export interface InsertedEvent {
  eventId: string;
  deliveryCount: number;
  duplicate: boolean;
  /**
   * The deliveries created for it and not leased by the statement, so a
   * local scheduler can take them at once.
   */
  deliveryIds: string[];
}

/**
 * Lease new deliveries to the publishing process: its scheduler's room now,
 * and how many it takes at most.
 */
export interface PublishLease extends LeaseRoom {
  limit: number;
}

/** What {@link insertEvents} stored, and the deliveries it leased. */
export interface InsertResult {
  events: InsertedEvent[];
  /** Deliveries leased to the publishing process, ready to send (see PublishLease). */
  leased: ClaimedDelivery[];
}

/**
 * The publish statement, from named pieces. With a lease, new deliveries
 * that this process may send now are inserted already leased to it
 * (`locked_by` and the lease's end as their due time), exactly as a claim
 * would leave them: the first attempt then needs no claim, no second
 * statement and no second write of the row. Which ones follows the claim's
 * rules (lease-room.ts): the endpoint's and the tenant's room here, and not
 * ordered endpoints, endpoints with a rate limit, or blocked or half-open
 * circuits, which the claims handle. If the process dies, a leased delivery
 * becomes due when its lease ends, as a claimed one does.
 */
function insertStatement(
  events: readonly NewEvent[],
  idempotencyWindowMs: number,
  lease: PublishLease | undefined,
): { text: string; values: unknown[] } {
  const p = new Params();
  const [ids, tenants, types, keys, bodies, channels, windowMs] = [
    p.add(events.map((e) => e.id), "text[]"),
    p.add(events.map((e) => e.tenantId), "text[]"),
    p.add(events.map((e) => e.eventType), "text[]"),
    p.add(events.map((e) => e.idempotencyKey), "text[]"),
    p.add(events.map((e) => e.body), "text[]"),
    p.add(events.map((e) => JSON.stringify(e.channels)), "jsonb[]"),
    p.add(idempotencyWindowMs, "float8"),
  ];
  const leasing = lease
    ? `${roomTables(p, lease)},
-- New deliveries this process may send now, in publish order within each
-- endpoint and tenant, within their room here (see lease-room.ts).
-- (Each carries the fan-out row whole, so the leased rows are read at the
-- end without a join: see queued.)
lease_ranked AS (
  SELECT f.*,
    row_number() OVER (PARTITION BY f.endpoint_id ORDER BY f.ord) AS rank,
    ${endpointFree(p, lease, "f", "l", "t")} AS free
  FROM fan f
  LEFT JOIN lanes l ON l.endpoint_id = f.endpoint_id
  LEFT JOIN tenants t ON t.tenant_id = f.tenant_id
  WHERE NOT f.ordered AND f.rate_limit_per_second IS NULL AND f.due <= now()
    AND f.consecutive_failures < ${p.add(lease.circuitFailureThreshold, "int")}
    AND ${notExcluded(p, lease, "f.endpoint_id", "f.tenant_id")}
),
lease_eligible AS (
  SELECT r.*,
    row_number() OVER (PARTITION BY r.tenant_id ORDER BY r.ord) AS tenant_rank,
    ${tenantFree(p, lease, "t")} AS tenant_free
  FROM lease_ranked r
  LEFT JOIN tenants t ON t.tenant_id = r.tenant_id
  WHERE r.rank <= r.free
),
leased AS (
  SELECT * FROM lease_eligible WHERE tenant_rank <= tenant_free ORDER BY ord LIMIT ${p.add(lease.limit, "int")}
),`
    : "";
  const worker = lease ? p.add(lease.workerId, "text") : "NULL";
  // The leased deliveries, read off leased, not joined to queued by id (see
  // queued); their lease's end is the expression queued stored, with the
  // statement's now().
  const leasedRows = lease
    ? `
UNION ALL
SELECT f.event_id, NULL, NULL, f.id, f.endpoint_id, f.tenant_id, f.event_type, (${leaseEnd(p, lease, "f")})::text,
       f.url, f.headers, f.secrets, f.signature_scheme, f.retry_policy, f.timeout_ms, f.max_in_flight
FROM leased f`
    : "";
  const text = `
WITH input AS (
  SELECT * FROM unnest(${ids}, ${tenants}, ${types}, ${keys}, ${bodies}, ${channels})
    WITH ORDINALITY AS i (id, tenant_id, event_type, idempotency_key, body, channels, ord)
),
-- Idempotency: each key (the first event naming it in this batch) is taken
-- for the window, or taken over when its window has passed. A key another
-- transaction holds makes this one wait for it, then find it taken (no row
-- comes back), so of concurrent duplicates exactly one is stored.
keyed AS (
  INSERT INTO idempotency_keys (tenant_id, key, event_id, expires_at)
  SELECT DISTINCT ON (tenant_id, idempotency_key) tenant_id, idempotency_key, id,
         now() + make_interval(secs => ${windowMs} / 1000)
  FROM input
  WHERE idempotency_key IS NOT NULL
  ORDER BY tenant_id, idempotency_key, ord
  ON CONFLICT (tenant_id, key) DO UPDATE
    SET event_id = excluded.event_id, expires_at = excluded.expires_at
    WHERE idempotency_keys.expires_at <= now()
  RETURNING event_id
),
inserted AS (
  INSERT INTO events (id, tenant_id, event_type, channels, idempotency_key, body)
  SELECT id, tenant_id, event_type, ARRAY(SELECT jsonb_array_elements_text(channels)), idempotency_key, body
  FROM input
  WHERE idempotency_key IS NULL OR id IN (SELECT event_id FROM keyed)
  ORDER BY ord
  RETURNING id, tenant_id, event_type, channels
),
-- The fan-out: one row per event and subscribed endpoint.
fan AS (
  -- The delivery id: "dlv_", the event's ULID time (so deliveries sort by
  -- publish time), then 64 bits of md5(event, endpoint) in hex, whose digits
  -- are Crockford base32 digits too: a valid, unique ULID-form id made in a
  -- plain expression (a PL/pgSQL ULID function cost about 20 us per row).
  SELECT 'dlv_' || substr(e.id, 5, 10) || upper(substr(md5(e.id || ep.id), 1, 16)) AS id,
         e.id AS event_id, ep.id AS endpoint_id, e.tenant_id, e.event_type, i.ord,
         -- While an endpoint is blocked (circuit open, or its probe in
         -- flight), its new deliveries wait for the block's end like the
         -- others (see circuit-holds.ts).
         greatest(now(), ep.circuit_open_until, ep.circuit_probe_until) AS due,
         ep.ordered, ep.rate_limit_per_second, ep.max_in_flight, ep.consecutive_failures, ep.timeout_ms,
         ep.url, ep.headers, ep.secrets, ep.signature_scheme, ep.retry_policy
  FROM inserted e
  JOIN input i ON i.id = e.id
  JOIN endpoints ep
    ON ep.tenant_id = e.tenant_id AND ep.deleted_at IS NULL AND NOT ep.disabled
   AND (cardinality(ep.event_types) = 0
        OR e.event_type = ANY (ep.event_types)
        OR EXISTS (SELECT 1 FROM unnest(ep.event_types) p
                   WHERE right(p, 2) = '.*' AND starts_with(e.event_type, left(p, -1))))
   AND (cardinality(ep.channels) = 0 OR cardinality(e.channels) = 0 OR ep.channels && e.channels)
),
${leasing}
-- The history row of each delivery.
fanned AS (
  INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status)
  SELECT f.id, f.event_id, f.endpoint_id, f.tenant_id, f.event_type, ${CREATED.to}
  FROM fan f
  -- Deliveries take their seq (publish order, for ordered endpoints) in the
  -- order the events were given.
  ORDER BY f.ord
  RETURNING id, event_id, endpoint_id, tenant_id, seq
),
-- Its row in the live queue: due now, held, parked, or leased to this process.
-- (What it needs of the fan-out row, it reads from the endpoint by primary
-- key: a join of the two CTEs by id was a nested loop, the planner
-- estimating one row for the fan-out, 150 ms for one event to 1,000
-- endpoints.)
queued AS (
  INSERT INTO delivery_queue (delivery_id, endpoint_id, tenant_id, seq, due_at, locked_by)
  SELECT d.id, d.endpoint_id, d.tenant_id, d.seq,
         ${lease ? `CASE WHEN d.parked THEN NULL WHEN d.id IN (SELECT id FROM leased) THEN ${leaseEnd(p, lease, "d")} ELSE d.due END` : "CASE WHEN d.parked THEN NULL ELSE d.due END"},
         ${lease ? `CASE WHEN d.id IN (SELECT id FROM leased) THEN ${worker} END` : "NULL"}
  FROM (
    SELECT fd.*, ep.timeout_ms,
      -- An ordered endpoint's deliveries queued behind another are parked
      -- (NULL: never due, so claims do not scan them) until the one before
      -- them ends. (seq follows publish order; min() is read off the
      -- endpoint index: see claim-due.ts.)
      ep.ordered AND (
        row_number() OVER (PARTITION BY fd.endpoint_id ORDER BY fd.seq) > 1
        OR (SELECT min(p.seq) FROM delivery_queue p WHERE p.endpoint_id = fd.endpoint_id) IS NOT NULL) AS parked,
      -- (As in fan: a blocked endpoint's new deliveries wait for the block's end.)
      greatest(now(), ep.circuit_open_until, ep.circuit_probe_until) AS due
    FROM fanned fd
    JOIN endpoints ep ON ep.id = fd.endpoint_id
  ) d
),
-- The status log (see delivery-updates.ts): each new delivery, CREATED, PENDING.
-- (Only the delivery's id: readers join its history row for the rest.)
logged AS (
  INSERT INTO delivery_updates (delivery_id, kind, status)
  SELECT id, ${CREATED.log}, ${CREATED.to} FROM fanned
)
-- One row per event, then one per leased delivery.
SELECT i.id, coalesce(c.n, 0)::int AS delivery_count, c.ids AS delivery_ids,
       NULL::text AS delivery_id, NULL::text AS endpoint_id, NULL::text AS tenant_id, NULL::text AS event_type,
       NULL::text AS lease_until, NULL::text AS url, NULL::jsonb AS headers, NULL::jsonb AS secrets,
       NULL::text AS signature_scheme, NULL::jsonb AS retry_policy, NULL::int AS timeout_ms,
       NULL::int AS max_in_flight
FROM inserted i
-- (Counted off fanned, which has the event's id; the queue row does not.)
LEFT JOIN (SELECT d.event_id, count(*) AS n, array_agg(d.id) FILTER (WHERE ${lease ? "d.id NOT IN (SELECT id FROM leased)" : "true"}) AS ids
           FROM fanned d GROUP BY d.event_id) c
  ON c.event_id = i.id${leasedRows}`;
  return { text, values: p.values };
}

const FIND_DUPLICATES = `
SELECT k.tenant_id, k.key AS idempotency_key, k.event_id AS id
FROM idempotency_keys k
JOIN unnest($1::text[], $2::text[]) AS d (tenant_id, idempotency_key)
  ON k.tenant_id = d.tenant_id AND k.key = d.idempotency_key`;

/**
 * One row per event (`delivery_id` NULL), then one per leased delivery with
 * the shared columns (see ../claimed-row.ts).
 */
interface Row extends ClaimedRow {
  id: string;
  delivery_count: number | null;
  delivery_ids: string[] | null;
  /** Set on the rows of leased deliveries (then `id` is their event's). */
  delivery_id: string | null;
  /** The lease's end, as text. */
  lease_until: string;
}

/**
 * Stores `events` with their deliveries, all or nothing, and returns one
 * result per event in the same order. An event whose idempotency key was
 * used within the last `idempotencyWindowMs` (or earlier in the same batch)
 * stores nothing and returns the original event's id with `duplicate` set.
 * With `lease`, the new deliveries the publishing process may send now come
 * back leased to it (see insertStatement).
 */
export async function insertEvents(
  sql: Sql,
  events: readonly NewEvent[],
  idempotencyWindowMs: number,
  lease?: PublishLease,
): Promise<InsertResult> {
  const { text, values } = insertStatement(events, idempotencyWindowMs, lease);
  const rows = await sql.query<Row>(text, values, events.length <= SMALL);
  const counts = new Map<string, number>();
  const deliveryIds = new Map<string, string[]>();
  const leased: ClaimedDelivery[] = [];
  const bodies = new Map(events.map((e) => [e.id, e.body]));
  for (const r of rows) {
    if (r.delivery_id === null) {
      counts.set(r.id, r.delivery_count ?? 0);
      deliveryIds.set(r.id, r.delivery_ids ?? []);
      continue;
    }
    leased.push(claimedDelivery(r, r.delivery_id, r.id, bodies.get(r.id)!, 1, r.lease_until));
  }
  const duplicates = events.filter((e) => !counts.has(e.id));
  const originals = new Map<string, string>();
  if (duplicates.length > 0) {
    // Only events with an idempotency key can be skipped (see keyed). The
    // statement above has committed, so the originals are visible now, also
    // those written by a concurrent publish that won the race.
    const found = await sql.query<{ tenant_id: string; idempotency_key: string; id: string }>(FIND_DUPLICATES, [
      duplicates.map((e) => e.tenantId),
      duplicates.map((e) => e.idempotencyKey),
    ]);
    for (const f of found) originals.set(`${f.tenant_id}\u0000${f.idempotency_key}`, f.id);
  }
  const results = events.map((e) => {
    const count = counts.get(e.id);
    if (count !== undefined) {
      return { eventId: e.id, deliveryCount: count, duplicate: false, deliveryIds: deliveryIds.get(e.id) ?? [] };
    }
    const original = originals.get(`${e.tenantId}\u0000${e.idempotencyKey}`);
    if (original === undefined) {
      throw new Error(`event ${e.id} was neither stored nor a duplicate`);
    }
    return { eventId: original, deliveryCount: 0, duplicate: true, deliveryIds: [] };
  });
  return { events: results, leased };
}
