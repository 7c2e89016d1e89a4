/**
 * Safety net for ordered endpoints. Deliveries queued behind another are
 * parked (next_attempt_at NULL) and the delivery before them lets the next
 * one out when it ends (see record-outcomes.ts). Should a head end some other
 * way (an operator's SQL, a restore), this finds parked deliveries that no
 * longer have anything live before them and makes them due.
 */
import type { Sql } from "../sql.js";

const UNPARK = `
UPDATE delivery_queue q SET due_at = now()
WHERE q.due_at IS NULL
  AND q.seq = (SELECT min(p.seq) FROM delivery_queue p WHERE p.endpoint_id = q.endpoint_id)
RETURNING q.delivery_id`;

/** Makes due every parked delivery with nothing live before it; returns how many. */
export async function unparkOrphans(sql: Sql): Promise<number> {
  return (await sql.query(UNPARK)).length;
}
