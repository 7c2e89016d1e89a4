/**
 * The queue figures of `GET /metrics` that only the database knows (see
 * metrics/metrics.ts, which reads them at most once a second): due
 * deliveries, how long the oldest has waited, open circuits.
 */
import type { Sql } from "../sql.js";

/** The database-derived gauges, over every process. */
export interface QueueGauges {
  /** Deliveries due now and not leased. */
  due: number;
  /** Seconds the oldest of them has waited (0 when none). */
  oldest: number;
  /** Endpoints whose circuit is open now. */
  circuits: number;
}

const QUEUE_GAUGES = `
SELECT q.due, q.oldest, c.circuits
FROM (SELECT count(*)::int AS due,
             coalesce(extract(epoch FROM now() - min(due_at)), 0)::float8 AS oldest
      FROM delivery_queue
      WHERE due_at <= now() AND locked_by IS NULL) q,
     (SELECT count(*)::int AS circuits
      FROM endpoints
      WHERE circuit_open_until > now() AND deleted_at IS NULL) c`;

/** Reads the gauges, in one statement. */
export async function readQueueGauges(sql: Sql): Promise<QueueGauges> {
  return (await sql.query<QueueGauges>(QUEUE_GAUGES, []))[0]!;
}
