/**
 * Gives leases back before they expire, so another process can take the
 * deliveries at once instead of waiting for the leases to run out.
 */
import type { Sql } from "../sql.js";
import { LIVE_STATES } from "./states.js";

const RELEASE = `
UPDATE deliveries SET locked_by = NULL, next_attempt_at = now()
WHERE locked_by = $1 AND status IN ${LIVE_STATES}
RETURNING id`;

/**
 * Gives back every lease `workerId` still holds, due at once, so another
 * process can take them without waiting for the leases to expire. Used on
 * shutdown for attempts that did not finish in time.
 */
export async function releaseLeases(sql: Sql, workerId: string): Promise<number> {
  return (await sql.query(RELEASE, [workerId])).length;
}

const RELEASE_IDS = `
UPDATE deliveries d
SET locked_by = NULL, next_attempt_at = greatest(now(), ep.circuit_open_until), updated_at = now()
FROM endpoints ep
WHERE d.id = ANY ($2::text[]) AND d.locked_by = $1 AND d.status IN ${LIVE_STATES} AND ep.id = d.endpoint_id`;

/**
 * Gives back the leases of deliveries `workerId` claimed and did not start
 * (its ready buffer on shutdown, or an endpoint whose circuit opened): due
 * again at once, or when the endpoint's circuit closes.
 */
export async function releaseUnstarted(sql: Sql, workerId: string, ids: readonly string[]): Promise<void> {
  if (ids.length > 0) await sql.query(RELEASE_IDS, [workerId, ids]);
}
