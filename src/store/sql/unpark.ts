/**
 * Safety net for ordered endpoints. Deliveries queued behind another are
 * parked (next_attempt_at NULL) and the delivery before them lets the next
 * one out when it ends (see record-outcomes.ts). Should a head end some other
 * way (an operator's SQL, a restore), this finds parked deliveries that no
 * longer have anything live before them and makes them due.
 */
import type { Sql } from "../sql.js";
import { LIVE_STATES } from "./states.js";

const UNPARK = `
UPDATE deliveries d SET next_attempt_at = now()
WHERE d.status IN ${LIVE_STATES} AND d.next_attempt_at IS NULL
  AND NOT EXISTS (
    SELECT 1 FROM deliveries p
    WHERE p.endpoint_id = d.endpoint_id AND p.status IN ${LIVE_STATES} AND p.seq < d.seq)
RETURNING d.id`;

/** Makes due every parked delivery with nothing live before it; returns how many. */
export async function unparkOrphans(sql: Sql): Promise<number> {
  return (await sql.query(UNPARK)).length;
}
