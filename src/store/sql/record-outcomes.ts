/**
 * Writes attempt outcomes back in batches: one statement updates every
 * delivery and inserts every attempt row of the batch.
 *
 * A delivery row is only updated while this process still holds its lease
 * (`locked_by`); if the lease expired and another process took the delivery
 * over, that process owns its state now, and only the attempt row is kept.
 */
import type { Sql } from "../sql.js";

/** The outcome of one attempt and the delivery state it leads to. */
export interface AttemptOutcome {
  attemptId: string;
  deliveryId: string;
  attemptNumber: number;
  startedAt: Date;
  durationMs: number;
  responseStatus: number;
  errorClass: string;
  error: string;
  responseBody: string;
  /** The delivery's new status (DeliveryState). */
  status: number;
  /** When the next attempt is due; null once the delivery has ended. */
  nextAttemptAt: Date | null;
}

const RECORD = `
WITH r AS (
  SELECT * FROM unnest(
    $2::text[], $3::text[], $4::int[], $5::timestamptz[], $6::int[], $7::int[],
    $8::text[], $9::text[], $10::text[], $11::smallint[], $12::timestamptz[])
    AS r (attempt_id, delivery_id, number, started_at, duration_ms, response_status,
          error_class, error, response_body, status, next_attempt_at)
),
updated AS (
  UPDATE deliveries d
  SET status = r.status, attempt_count = r.number, next_attempt_at = r.next_attempt_at,
      locked_by = NULL, last_response_status = r.response_status, last_error = r.error,
      updated_at = now()
  FROM r
  WHERE d.id = r.delivery_id AND d.locked_by = $1
  RETURNING d.id
)
INSERT INTO attempts (id, delivery_id, number, started_at, duration_ms, response_status,
                      error_class, error, response_body)
SELECT attempt_id, delivery_id, number, started_at, duration_ms, response_status,
       error_class, error, response_body
FROM r`;

/** Records a batch of outcomes of attempts made by `workerId`. */
export async function recordOutcomes(sql: Sql, workerId: string, outcomes: readonly AttemptOutcome[]): Promise<void> {
  if (outcomes.length === 0) return;
  await sql.query(RECORD, [
    workerId,
    outcomes.map((o) => o.attemptId),
    outcomes.map((o) => o.deliveryId),
    outcomes.map((o) => o.attemptNumber),
    outcomes.map((o) => o.startedAt),
    outcomes.map((o) => o.durationMs),
    outcomes.map((o) => o.responseStatus),
    outcomes.map((o) => o.errorClass),
    outcomes.map((o) => o.error),
    outcomes.map((o) => o.responseBody),
    outcomes.map((o) => o.status),
    outcomes.map((o) => o.nextAttemptAt),
  ]);
}

const RELEASE = `
UPDATE deliveries SET locked_by = NULL, next_attempt_at = now()
WHERE locked_by = $1 AND status IN (1, 2)`;

/**
 * Gives back every lease `workerId` still holds, due at once, so another
 * process can take them without waiting for the leases to expire. Used on
 * shutdown for attempts that did not finish in time.
 */
export async function releaseLeases(sql: Sql, workerId: string): Promise<number> {
  const rows = await sql.query(`${RELEASE} RETURNING id`, [workerId]);
  return rows.length;
}

/** When the earliest pending delivery is due, or null when none is pending. */
export async function nextDueAt(sql: Sql): Promise<Date | null> {
  const rows = await sql.query<{ at: Date | null }>(
    "SELECT min(next_attempt_at) AS at FROM deliveries WHERE status IN (1, 2)",
  );
  return rows[0]?.at ?? null;
}
