/**
 * What changing an endpoint does to its deliveries, within the changing
 * transaction (the ORM's, so knex placeholders `?`):
 * - deleting it fails its live deliveries, each logged as ENDPOINT_DISABLED
 *   in the status log (see delivery-updates.ts); clearing locked_by also
 *   keeps an attempt in flight from writing the delivery back to life (see
 *   record-outcomes.ts);
 * - turning `ordered` off makes the deliveries it parked due.
 */
import type { EntityManager } from "@mikro-orm/postgresql";
import { DeliveryEvent } from "../../domain/delivery/state.js";
import { sqlTransition } from "./states.js";

/** Live deliveries of a deleted endpoint fail (see the state machine). */
const DELETED = sqlTransition(DeliveryEvent.EndpointDeleted);

// Knex placeholders (?): it runs through the ORM's transaction.
const FAIL_PENDING_OF_DELETED = `
WITH dequeued AS (
  DELETE FROM delivery_queue WHERE endpoint_id = ?
  RETURNING delivery_id
),
failed AS (
  UPDATE deliveries d
  SET status = ${DELETED.to}, updated_at = now(), last_error = 'endpoint deleted'
  FROM dequeued q
  WHERE d.id = q.delivery_id AND d.status IN ${DELETED.from}
  RETURNING d.id, d.attempt_count, d.last_error
),
logged AS (
  INSERT INTO delivery_updates (delivery_id, kind, status, attempt_number, error)
  SELECT id, ${DELETED.log}, ${DELETED.to}, attempt_count, last_error FROM failed
  RETURNING 1
)
SELECT count(*)::int AS n FROM logged`;

/** Fails endpoint `endpointId`'s live deliveries within `tx`; returns how many. */
export async function failPendingOfDeleted(tx: EntityManager, endpointId: string): Promise<number> {
  const rows = await tx
    .getConnection()
    .execute<{ n: number }[]>(FAIL_PENDING_OF_DELETED, [endpointId], "all", tx.getTransactionContext());
  return rows[0]?.n ?? 0;
}

const UNPARK = `
UPDATE delivery_queue SET due_at = now()
WHERE endpoint_id = ? AND due_at IS NULL`;

/** Makes endpoint `endpointId`'s parked deliveries (ordered delivery) due, within `tx`. */
export async function unparkEndpoint(tx: EntityManager, endpointId: string): Promise<void> {
  await tx.getConnection().execute(UNPARK, [endpointId], "run", tx.getTransactionContext());
}
