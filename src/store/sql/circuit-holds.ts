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
 *   began before the circuit opened, an outcome written by a process that
 *   did not open it, a lease that ran out;
 * and released, due at once, when the probe succeeds and the circuit closes.
 *
 * Moving rows is monotone while blocked (only later) and bounded (until the
 * block ends), so a crash between two steps never loses a delivery: held
 * rows simply come due when the block would have ended.
 */
import type { Sql } from "../sql.js";
import { LIVE_STATES } from "./states.js";

/** The moment a blocked endpoint `ep` takes requests again (null: not blocked). */
const BLOCKED_UNTIL = `nullif(greatest(ep.circuit_open_until, ep.circuit_probe_until, now()), now())`;

const HOLD = `
UPDATE deliveries d
SET next_attempt_at = ${BLOCKED_UNTIL}, updated_at = now()
FROM endpoints ep
WHERE ep.id = ANY ($1::text[]) AND d.endpoint_id = ep.id
  AND d.status IN ${LIVE_STATES} AND d.locked_by IS NULL
  AND d.next_attempt_at < ${BLOCKED_UNTIL}`;

/**
 * Holds the waiting deliveries of endpoints `endpointIds` until each one is
 * no longer blocked (see the module comment); endpoints not blocked are
 * left alone. One probe of `deliveries_endpoint_live_idx` per endpoint.
 */
export async function holdForCircuit(sql: Sql, endpointIds: readonly string[]): Promise<void> {
  if (endpointIds.length > 0) await sql.query(HOLD, [endpointIds]);
}

const HOLD_DUE = `
UPDATE deliveries d
SET next_attempt_at = ${BLOCKED_UNTIL}, updated_at = now()
FROM endpoints ep
WHERE ep.circuit_open_until IS NOT NULL
  AND (ep.circuit_open_until > now() OR ep.circuit_probe_until > now())
  AND d.endpoint_id = ep.id AND d.status IN ${LIVE_STATES} AND d.locked_by IS NULL
  AND d.next_attempt_at <= now()
RETURNING d.id`;

/**
 * The heartbeat's sweep: holds every delivery that is due although its
 * endpoint is blocked, whoever's write made it due. Returns how many.
 * The blocked endpoints come from `endpoints_circuit_idx` (only failing
 * endpoints are in it); with none, the statement reads nothing else.
 */
export async function holdDueOfBlocked(sql: Sql): Promise<number> {
  return (await sql.query(HOLD_DUE)).length;
}

const RELEASE = `
UPDATE deliveries d
SET next_attempt_at = now(), updated_at = now()
FROM unnest($1::text[], $2::timestamptz[]) AS c (endpoint_id, held_until)
WHERE d.endpoint_id = c.endpoint_id AND d.status IN ${LIVE_STATES} AND d.locked_by IS NULL
  -- held_until came through a JS Date, which drops the microseconds.
  AND d.next_attempt_at > now() AND d.next_attempt_at < c.held_until + interval '1 millisecond'`;

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
