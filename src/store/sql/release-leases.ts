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
FROM unnest($2::text[], $3::timestamptz[]) AS g (delivery_id, lease_until), endpoints ep
WHERE q.delivery_id = g.delivery_id AND q.locked_by = $1 AND q.due_at = g.lease_until AND ep.id = q.endpoint_id`;

/**
 * Gives back the leases of deliveries `workerId` claimed and did not start
 * (its ready buffer on shutdown, or an endpoint whose circuit opened): due
 * again at once, or when the endpoint's circuit closes. Only the leases
 * given (each delivery's `leaseUntil`, its token): not a later lease of the
 * same delivery, taken once one of these had lapsed.
 */
export async function releaseUnstarted(
  sql: Sql,
  workerId: string,
  deliveries: readonly { id: string; leaseUntil: Date }[],
): Promise<void> {
  if (deliveries.length > 0) {
    await sql.query(RELEASE_IDS, [workerId, deliveries.map((d) => d.id), deliveries.map((d) => d.leaseUntil)]);
  }
}
