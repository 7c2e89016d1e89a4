/**
 * Gives leases back before they expire, so another process can take the
 * deliveries at once instead of waiting for the leases to run out.
 */
import type { Sql } from "../sql.js";

const RELEASE = `
UPDATE delivery_queue SET locked_by = NULL, due_at = now()
WHERE locked_by = $1
RETURNING delivery_id`;

/**
 * Gives back every lease `workerId` still holds, due at once, so another
 * process can take them without waiting for the leases to expire. Used on
 * shutdown for attempts that did not finish in time.
 */
export async function releaseLeases(sql: Sql, workerId: string): Promise<number> {
  return (await sql.query(RELEASE, [workerId])).length;
}

const RELEASE_IDS = `
UPDATE delivery_queue q
SET locked_by = NULL, due_at = greatest(now(), ep.circuit_open_until)
FROM endpoints ep
WHERE q.delivery_id = ANY ($2::text[]) AND q.locked_by = $1 AND ep.id = q.endpoint_id`;

/**
 * Gives back the leases of deliveries `workerId` claimed and did not start
 * (its ready buffer on shutdown, or an endpoint whose circuit opened): due
 * again at once, or when the endpoint's circuit closes.
 */
export async function releaseUnstarted(sql: Sql, workerId: string, ids: readonly string[]): Promise<void> {
  if (ids.length > 0) await sql.query(RELEASE_IDS, [workerId, ids]);
}
