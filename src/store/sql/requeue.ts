/**
 * Queues one delivery again, due now, whatever its status, and wakes the
 * schedulers (NOTIFY on commit, as the insert trigger does for new ones).
 */
import { DeliveryEvent } from "../../domain/delivery/state.js";
import type { Sql } from "../sql.js";
import { sqlTransition } from "./states.js";

/** Queued again: RETRYING, logged REQUEUED, whatever the status was (see the state machine). */
const REQUEUED = sqlTransition(DeliveryEvent.Requeued);

/** What the delivery looked like when asked to requeue it. */
export interface RequeueResult {
  /** False when there is no such delivery. */
  found: boolean;
  /** An attempt is in flight right now. */
  inFlight: boolean;
  /** The endpoint is disabled or deleted: nothing was queued. */
  endpointUnavailable: "disabled" | "deleted" | null;
  /** The delivery was queued. */
  requeued: boolean;
}

const REQUEUE = `
WITH target AS (
  SELECT d.id, q.locked_by IS NOT NULL AS in_flight, q.delivery_id IS NOT NULL AS queued,
         CASE WHEN ep.deleted_at IS NOT NULL THEN 'deleted' WHEN ep.disabled THEN 'disabled' END AS unavailable
  FROM deliveries d
  JOIN endpoints ep ON ep.id = d.endpoint_id
  LEFT JOIN delivery_queue q ON q.delivery_id = d.id
  WHERE d.id = $1
  FOR UPDATE OF d
),
requeued AS (
  UPDATE deliveries d
  SET status = ${REQUEUED.to}, updated_at = now()
  FROM target t
  WHERE d.id = t.id AND NOT t.in_flight AND t.unavailable IS NULL
  RETURNING d.id, d.endpoint_id, d.tenant_id, d.attempt_count, d.seq
),
-- Due at once: back in the queue, or moved up in it if it waited there.
queued AS (
  INSERT INTO delivery_queue (delivery_id, endpoint_id, tenant_id, seq, attempt_count, due_at)
  SELECT id, endpoint_id, tenant_id, seq, attempt_count, now() FROM requeued
  ON CONFLICT (delivery_id) DO UPDATE SET due_at = now(), locked_by = NULL
),
-- The status log: REQUEUED, now RETRYING.
logged AS (
  INSERT INTO delivery_updates (delivery_id, kind, status, attempt_number, next_attempt_at)
  SELECT id, ${REQUEUED.log}, ${REQUEUED.to}, attempt_count, now() FROM requeued
),
woken AS (
  SELECT pg_notify('hookline_due', '') FROM requeued
)
SELECT t.in_flight, t.unavailable, (SELECT count(*) FROM requeued)::int AS requeued,
       (SELECT count(*) FROM woken)::int AS woken
FROM target t`;

/** Queues delivery `id` for an attempt now (see {@link RequeueResult}). */
export async function requeueDelivery(sql: Sql, id: string): Promise<RequeueResult> {
  const [row] = await sql.query<{ in_flight: boolean; unavailable: "disabled" | "deleted" | null; requeued: number }>(
    REQUEUE,
    [id],
  );
  if (!row) return { found: false, inFlight: false, endpointUnavailable: null, requeued: false };
  return { found: true, inFlight: row.in_flight, endpointUnavailable: row.unavailable, requeued: row.requeued > 0 };
}
