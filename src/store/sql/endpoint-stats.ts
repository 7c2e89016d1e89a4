/**
 * One endpoint's delivery figures over a window ending now. Both reads go
 * through the endpoint's deliveries (index deliveries_endpoint_idx), so
 * their cost grows with the deliveries the endpoint has within retention.
 */
import { DeliveryState } from "../../domain/delivery/state.js";
import type { Sql } from "../sql.js";
import { LIVE_STATES, sqlStatus } from "./states.js";

/** What the statements return. */
export interface EndpointFigures {
  succeeded: number;
  failed: number;
  pending: number;
  attempts: number;
  successfulAttempts: number;
  latencyP50Ms: number;
  latencyP95Ms: number;
}

const COUNTS = `
SELECT count(*) FILTER (WHERE status = ${sqlStatus(DeliveryState.Succeeded)} AND updated_at >= $2)::int AS succeeded,
       count(*) FILTER (WHERE status = ${sqlStatus(DeliveryState.Failed)} AND updated_at >= $2)::int AS failed,
       count(*) FILTER (WHERE status IN ${LIVE_STATES})::int AS pending
FROM deliveries WHERE endpoint_id = $1`;

const ATTEMPTS = `
SELECT count(*)::int AS attempts,
       count(*) FILTER (WHERE a.response_status BETWEEN 200 AND 299)::int AS ok,
       coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY a.duration_ms), 0)::float8 AS p50,
       coalesce(percentile_cont(0.95) WITHIN GROUP (ORDER BY a.duration_ms), 0)::float8 AS p95
FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
WHERE d.endpoint_id = $1 AND a.started_at >= $2`;

/** Counts and attempt latencies of endpoint `endpointId` since `since`. */
export async function endpointFigures(sql: Sql, endpointId: string, since: Date): Promise<EndpointFigures> {
  const [[c], [a]] = await Promise.all([
    sql.query<{ succeeded: number; failed: number; pending: number }>(COUNTS, [endpointId, since]),
    sql.query<{ attempts: number; ok: number; p50: number; p95: number }>(ATTEMPTS, [endpointId, since]),
  ]);
  return {
    succeeded: c!.succeeded,
    failed: c!.failed,
    pending: c!.pending,
    attempts: a!.attempts,
    successfulAttempts: a!.ok,
    latencyP50Ms: a!.p50,
    latencyP95Ms: a!.p95,
  };
}
