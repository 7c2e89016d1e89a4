/**
 * Deliveries of an endpoint whose circuit is not taking requests are held:
 * their `next_attempt_at` is moved to the moment the endpoint can take them
 * again, so they are not due meanwhile and the claim's scan of due rows
 * never has to walk over them (a window full of rows it cannot take would
 * stall every other endpoint; see claim-due.ts).
 *
 * An endpoint is blocked while its circuit is open (`circuit_open_until` in
 * the future) and while a half-open circuit's probe is in flight
 * (`circuit_probe_until`, the probe's lease end). Its deliveries wait until
 * the later of the two, without using up attempts. Deliveries are held:
 * - when a circuit opens or a probe is claimed (the scheduler's follow-ups);
 * - by a sweep on every scheduler heartbeat, for rows that became due while
 *   their endpoint was blocked by another path: a publish whose statement
 *   began before the circuit opened, a lease that ran out; the sweep also
 *   tells each scheduler which endpoints are blocked, for its claims;
 * and released, due at once, when the probe succeeds and the circuit closes.
 *
 * Moving rows is monotone while blocked (only later) and bounded (until the
 * block ends), so a crash between two steps never loses a delivery: held
 * rows simply come due when the block would have ended.
 */
import type { Sql } from "../sql.js";

/** The moment a blocked endpoint `ep` takes requests again (null: not blocked). */
const BLOCKED_UNTIL = `nullif(greatest(ep.circuit_open_until, ep.circuit_probe_until, now()), now())`;

const HOLD = `
UPDATE delivery_queue q
SET due_at = ${BLOCKED_UNTIL}
FROM endpoints ep
WHERE ep.id = ANY ($1::text[]) AND q.endpoint_id = ep.id AND q.locked_by IS NULL
  AND q.due_at < ${BLOCKED_UNTIL}`;

/**
 * Holds the waiting deliveries of endpoints `endpointIds` until each one is
 * no longer blocked (see the module comment); endpoints not blocked are
 * left alone. One probe of `deliveries_endpoint_live_idx` per endpoint.
 */
export async function holdForCircuit(sql: Sql, endpointIds: readonly string[]): Promise<void> {
  if (endpointIds.length > 0) await sql.query(HOLD, [endpointIds]);
}

const SWEEP = `
WITH blocked AS (
  SELECT ep.id, greatest(ep.circuit_open_until, ep.circuit_probe_until) AS until
  FROM endpoints ep
  WHERE ep.circuit_open_until IS NOT NULL
    AND (ep.circuit_open_until > now() OR ep.circuit_probe_until > now())
),
held AS (
  UPDATE delivery_queue q
  SET due_at = b.until
  FROM blocked b
  WHERE q.endpoint_id = b.id AND q.locked_by IS NULL AND q.due_at <= now()
  RETURNING q.delivery_id
)
SELECT b.id, b.until, (SELECT count(*) FROM held)::int AS held FROM blocked b
UNION ALL
SELECT NULL, NULL, (SELECT count(*) FROM held)::int
WHERE NOT EXISTS (SELECT 1 FROM blocked)`;

/** What {@link sweepBlocked} found. */
export interface BlockedEndpoints {
  /** Every blocked endpoint, with when it takes requests again. */
  blocked: { endpointId: string; until: Date }[];
  /** Deliveries it held (due although their endpoint was blocked). */
  held: number;
}

/**
 * The heartbeat's sweep: lists the blocked endpoints (for the claim to
 * leave out; see claim-due.ts) and holds every delivery that is due although
 * its endpoint is blocked, whoever's write made it due. The blocked
 * endpoints come from `endpoints_circuit_idx` (only failing endpoints are in
 * it); with none, the statement reads nothing else.
 */
export async function sweepBlocked(sql: Sql): Promise<BlockedEndpoints> {
  const rows = await sql.query<{ id: string | null; until: string | null; held: number }>(SWEEP);
  return {
    // Timestamps come back as text on the ORM's pool.
    blocked: rows.filter((r) => r.id !== null).map((r) => ({ endpointId: r.id!, until: new Date(r.until!) })),
    held: rows[0]?.held ?? 0,
  };
}

const RELEASE = `
UPDATE delivery_queue q
SET due_at = now()
FROM unnest($1::text[], $2::timestamptz[]) AS c (endpoint_id, held_until)
WHERE q.endpoint_id = c.endpoint_id AND q.locked_by IS NULL
  -- held_until came through a JS Date, which drops the microseconds.
  AND q.due_at > now() AND q.due_at < c.held_until + interval '1 millisecond'`;

/**
 * An endpoint's circuit closed (its probe succeeded): the deliveries it held
 * until `heldUntil` (the end of the cool-down or of the probe's lease) are
 * due at once. Retries of its deliveries scheduled beyond that keep their
 * time.
 */
export async function releaseHeld(sql: Sql, closed: readonly { endpointId: string; heldUntil: Date }[]): Promise<void> {
  if (closed.length === 0) return;
  await sql.query(RELEASE, [closed.map((c) => c.endpointId), closed.map((c) => c.heldUntil)]);
}
