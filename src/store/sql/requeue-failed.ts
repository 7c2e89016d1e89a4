/**
 * RecoverEndpoint's statement: queues again, due now, the FAILED deliveries
 * of one endpoint created in a time range, in batches (each its own short
 * transaction, so no lock is held long), and wakes the schedulers once per
 * batch (NOTIFY on commit).
 */
import { DeliveryEvent, DeliveryState } from "../../domain/delivery/state.js";
import { inBatches, type Sql } from "../sql.js";
import { sqlStatus, sqlTransition } from "./states.js";

/** Queued again: RETRYING, logged REQUEUED (see the state machine). */
const REQUEUED = sqlTransition(DeliveryEvent.Requeued);

const RECOVER_BATCH = `
WITH batch AS (
  SELECT d.id FROM deliveries d
  WHERE d.endpoint_id = $1 AND d.status = ${sqlStatus(DeliveryState.Failed)} AND d.created_at >= $2 AND d.created_at < $3
  ORDER BY d.id
  LIMIT $4
  FOR UPDATE SKIP LOCKED
),
requeued AS (
  UPDATE deliveries d
  SET status = ${REQUEUED.to}, updated_at = now()
  FROM batch WHERE d.id = batch.id
  RETURNING d.id, d.endpoint_id, d.tenant_id, d.attempt_count, d.seq
),
queued AS (
  INSERT INTO delivery_queue (delivery_id, endpoint_id, tenant_id, seq, attempt_count, due_at)
  SELECT id, endpoint_id, tenant_id, seq, attempt_count, now() FROM requeued
),
-- The status log: REQUEUED, now RETRYING.
logged AS (
  INSERT INTO delivery_updates (delivery_id, kind, status, attempt_number, next_attempt_at)
  SELECT id, ${REQUEUED.log}, ${REQUEUED.to}, attempt_count, now() FROM requeued
),
woken AS (
  SELECT pg_notify('hookline_due', '') WHERE EXISTS (SELECT 1 FROM requeued)
)
SELECT (SELECT count(*) FROM requeued)::int AS n, (SELECT count(*) FROM woken)::int AS woken`;

/**
 * Queues again, due now, the FAILED deliveries of endpoint `endpointId`
 * created in [since, until), in batches of `batch` (each its own short
 * transaction). Returns how many.
 */
export async function requeueFailed(sql: Sql, endpointId: string, since: Date, until: Date, batch = 1_000): Promise<number> {
  return inBatches(batch, async () => (await sql.query<{ n: number }>(RECOVER_BATCH, [endpointId, since, until, batch]))[0]?.n ?? 0);
}
