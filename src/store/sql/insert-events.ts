/**
 * The publish hot path: store events and fan them out to their endpoints in
 * ONE statement.
 *
 * One statement is one round trip and atomic without BEGIN/COMMIT, so a batch
 * of 1,000 events with all their deliveries is all or nothing, and a single
 * Publish costs one query. The fan-out is set based (INSERT ... SELECT joined
 * against the tenant's endpoints), never a loop per row; delivery ids come
 * are derived in SQL from the event and endpoint (see the statement). The
 * AFTER INSERT trigger on `deliveries`
 * notifies the schedulers on commit.
 */
import { DeliveryEvent } from "../../domain/delivery/state.js";
import type { Sql } from "../sql.js";
import { LIVE_STATES, sqlTransition } from "./states.js";

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
  /** The deliveries created for it, so a local scheduler can take them at once. */
  deliveryIds: string[];
}

const INSERT_EVENTS = `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[])
    WITH ORDINALITY AS i (id, tenant_id, event_type, idempotency_key, body, channels, ord)
),
-- Idempotency: each key (the first event naming it in this batch) is taken
-- for the window, or taken over when its window has passed. A key another
-- transaction holds makes this one wait for it, then find it taken (no row
-- comes back), so of concurrent duplicates exactly one is stored.
keyed AS (
  INSERT INTO idempotency_keys (tenant_id, key, event_id, expires_at)
  SELECT DISTINCT ON (tenant_id, idempotency_key) tenant_id, idempotency_key, id,
         now() + make_interval(secs => $7::float8 / 1000)
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
fanned AS (
  INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status, next_attempt_at)
  -- While an endpoint is blocked (circuit open, or its probe in flight), its
  -- new deliveries wait for the block's end like the others (see
  -- circuit-holds.ts). An
  -- ordered endpoint's deliveries queued behind another are parked (NULL:
  -- never due, so claims do not scan them) until the one before them ends.
  -- The delivery id: "dlv_", the event's ULID time (so deliveries sort by
  -- publish time), then 64 bits of md5(event, endpoint) in hex, whose digits
  -- are Crockford base32 digits too: a valid, unique ULID-form id made in a
  -- plain expression (a PL/pgSQL ULID function cost about 20 us per row).
  SELECT 'dlv_' || substr(e.id, 5, 10) || upper(substr(md5(e.id || ep.id), 1, 16)), e.id, ep.id, e.tenant_id, e.event_type, ${CREATED.to},
         CASE
           WHEN ep.ordered AND (
             row_number() OVER (PARTITION BY ep.id ORDER BY i.ord) > 1
             OR EXISTS (SELECT 1 FROM deliveries p WHERE p.endpoint_id = ep.id AND p.status IN ${LIVE_STATES}))
           THEN NULL
           ELSE greatest(now(), ep.circuit_open_until, ep.circuit_probe_until)
         END
  FROM inserted e
  JOIN input i ON i.id = e.id
  JOIN endpoints ep
    ON ep.tenant_id = e.tenant_id AND ep.deleted_at IS NULL AND NOT ep.disabled
   AND (cardinality(ep.event_types) = 0
        OR e.event_type = ANY (ep.event_types)
        OR EXISTS (SELECT 1 FROM unnest(ep.event_types) p
                   WHERE right(p, 2) = '.*' AND starts_with(e.event_type, left(p, -1))))
   AND (cardinality(ep.channels) = 0 OR cardinality(e.channels) = 0 OR ep.channels && e.channels)
  -- Deliveries take their seq (publish order, for ordered endpoints) in the
  -- order the events were given.
  ORDER BY i.ord
  RETURNING id, event_id, endpoint_id, tenant_id, event_type
),
-- The status log (see delivery-updates.ts): each new delivery, CREATED, PENDING.
logged AS (
  INSERT INTO delivery_updates (delivery_id, event_id, endpoint_id, tenant_id, event_type, kind, status)
  SELECT id, event_id, endpoint_id, tenant_id, event_type, ${CREATED.log}, ${CREATED.to} FROM fanned
)
SELECT i.id, coalesce(c.n, 0)::int AS delivery_count, c.ids AS delivery_ids
FROM inserted i
LEFT JOIN (SELECT event_id, count(*) AS n, array_agg(id) AS ids FROM fanned GROUP BY event_id) c ON c.event_id = i.id`;

const FIND_DUPLICATES = `
SELECT k.tenant_id, k.key AS idempotency_key, k.event_id AS id
FROM idempotency_keys k
JOIN unnest($1::text[], $2::text[]) AS d (tenant_id, idempotency_key)
  ON k.tenant_id = d.tenant_id AND k.key = d.idempotency_key`;

/**
 * Stores `events` with their deliveries, all or nothing, and returns one
 * result per event in the same order. An event whose idempotency key was
 * used within the last `idempotencyWindowMs` (or earlier in the same batch)
 * stores nothing and returns the original event's id with `duplicate` set.
 */
export async function insertEvents(sql: Sql, events: readonly NewEvent[], idempotencyWindowMs: number): Promise<InsertedEvent[]> {
  const rows = await sql.query<{ id: string; delivery_count: number; delivery_ids: string[] | null }>(
    INSERT_EVENTS,
    [
    events.map((e) => e.id),
    events.map((e) => e.tenantId),
    events.map((e) => e.eventType),
    events.map((e) => e.idempotencyKey),
    events.map((e) => e.body),
    events.map((e) => JSON.stringify(e.channels)),
    idempotencyWindowMs,
    ],
    events.length <= SMALL,
  );
  const counts = new Map(rows.map((r) => [r.id, r.delivery_count]));
  const deliveryIds = new Map(rows.map((r) => [r.id, r.delivery_ids ?? []]));
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
  return events.map((e) => {
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
}
