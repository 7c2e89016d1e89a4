/**
 * Retention: removes what is older than the retention period, in small
 * batches (each its own short transaction, so no long locks):
 * - deliveries that ended (SUCCEEDED or FAILED) before the cutoff, with their
 *   attempts (in the same statement: the hot tables have no foreign keys,
 *   see the migration hot_path_foreign_keys);
 * - events published before the cutoff that have no delivery left;
 * - status log rows recorded before the cutoff, except those of deliveries
 *   still live (they go once the delivery ends and ages out), first: they
 *   are read joined to their deliveries (see delivery-updates.ts);
 * - idempotency keys whose window has passed.
 * Deliveries and events are found by primary key: their ids begin with
 * their (event's) time, so "published before the cutoff" is an id range and
 * the scan starts at the oldest row left. Log rows by the BRIN index on
 * occurred_at.
 */
// The id format is the domain's; ids.ts is a pure module (no store, no I/O),
// which the store may import (see test/layers.test.ts).
import { firstIdAt } from "../../domain/ids.js";
import { inBatches, type Sql } from "../sql.js";
import { ofEvent } from "./deliveries-of-event.js";
import { ENDED_STATES } from "./states.js";

const PRUNE_DELIVERIES = `
WITH doomed AS (
  SELECT id FROM deliveries
  WHERE id < $1 AND status IN ${ENDED_STATES} AND updated_at < $2
  ORDER BY id
  LIMIT $3
  FOR UPDATE SKIP LOCKED
),
gone AS (
  DELETE FROM deliveries d USING doomed WHERE d.id = doomed.id
  RETURNING d.id
),
attempts_gone AS (
  DELETE FROM attempts a USING gone WHERE a.delivery_id = gone.id
)
SELECT count(*)::int AS n FROM gone`;

const PRUNE_EVENTS = `
WITH doomed AS (
  SELECT e.id FROM events e
  WHERE e.id < $1 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE ${ofEvent("d", "e.id")})
  ORDER BY e.id
  LIMIT $2
  FOR UPDATE SKIP LOCKED
)
DELETE FROM events e USING doomed WHERE e.id = doomed.id`;

const PRUNE_UPDATES = `
DELETE FROM delivery_updates
WHERE ctid IN (
  SELECT u.ctid FROM delivery_updates u
  WHERE u.occurred_at < $1
    AND NOT EXISTS (SELECT 1 FROM delivery_queue q WHERE q.delivery_id = u.delivery_id)
  LIMIT $2
)`;

const PRUNE_KEYS = `
DELETE FROM idempotency_keys
WHERE ctid IN (SELECT ctid FROM idempotency_keys WHERE expires_at < now() LIMIT $1)`;

/** How many rows one pass removed. */
export interface Pruned {
  deliveries: number;
  events: number;
  updates: number;
  /** Idempotency keys whose window has passed. */
  keys: number;
}

/** Removes everything older than `cutoff` (see the module comment), `batch` rows per statement. */
export async function pruneOlderThan(sql: Sql, cutoff: Date, batch = 1_000): Promise<Pruned> {
  const pruned: Pruned = { deliveries: 0, events: 0, updates: 0, keys: 0 };
  /** Runs a statement that counts what it removed (`n`). */
  const counted = (text: string, values: unknown[]) =>
    inBatches(batch, async () => (await sql.query<{ n: number }>(text, values))[0]?.n ?? 0);
  /** Runs a DELETE, counting its rows. */
  const run = (text: string, values: unknown[]) => counted(`WITH gone AS (${text} RETURNING 1) SELECT count(*)::int AS n FROM gone`, values);
  // The log first: its rows are read joined to their deliveries (see
  // delivery-updates.ts), so a delivery goes only once its rows have gone.
  pruned.updates = await run(PRUNE_UPDATES, [cutoff, batch]);
  pruned.deliveries = await counted(PRUNE_DELIVERIES, [firstIdAt("delivery", cutoff), cutoff, batch]);
  pruned.events = await run(PRUNE_EVENTS, [firstIdAt("event", cutoff), batch]);
  pruned.keys = await run(PRUNE_KEYS, [batch]);
  return pruned;
}
