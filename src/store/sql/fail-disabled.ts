/**
 * Fails the live deliveries of endpoints Hookline has just disabled (410
 * Gone, or failing without a success for too long; see record-outcomes.ts),
 * with the reason, and logs each in the status log. An endpoint an operator
 * disables keeps its deliveries waiting: this runs only for the endpoints a
 * batch of outcomes disabled (outcome-writer.ts).
 */
import { DeliveryEvent } from "../../domain/delivery/state.js";
import type { Sql } from "../sql.js";
import { sqlTransition } from "./states.js";

/** Live deliveries of a disabled endpoint fail (see the state machine). */
const DISABLED = sqlTransition(DeliveryEvent.EndpointDisabled);

const FAIL_PENDING = `
WITH dequeued AS (
  DELETE FROM delivery_queue q
  WHERE q.endpoint_id = ANY ($1::text[])
  RETURNING q.delivery_id
),
failed AS (
  UPDATE deliveries d
  SET status = ${DISABLED.to}, updated_at = now(), last_error = 'endpoint disabled: ' || ep.disabled_reason
  FROM dequeued q, endpoints ep
  WHERE d.id = q.delivery_id AND ep.id = d.endpoint_id AND d.status IN ${DISABLED.from}
  RETURNING d.id, d.attempt_count, d.last_error
)
-- The status log: ENDPOINT_DISABLED, now FAILED.
INSERT INTO delivery_updates (delivery_id, kind, status, attempt_number, error)
SELECT id, ${DISABLED.log}, ${DISABLED.to}, attempt_count, last_error FROM failed`;

/** Fails every live delivery of endpoints that were disabled, with the reason, and logs it. */
export async function failPendingOfDisabled(sql: Sql, endpointIds: readonly string[]): Promise<void> {
  if (endpointIds.length > 0) await sql.query(FAIL_PENDING, [endpointIds]);
}
