/**
 * The registry of live scheduler processes. Per-endpoint limits (in-flight
 * requests, requests per second) are shared across processes by dividing
 * them by the number of live ones; a process is live while its heartbeat is
 * recent.
 */
import type { Sql } from "../sql.js";

const HEARTBEAT = `
WITH beat AS (
  INSERT INTO workers (id) VALUES ($1)
  ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
),
swept AS (
  DELETE FROM workers WHERE heartbeat_at < now() - interval '1 day'
)
SELECT count(*)::int AS others FROM workers
WHERE id <> $1 AND heartbeat_at > now() - make_interval(secs => $2::float8 / 1000)`;

/** Records that `workerId` is alive; returns how many processes are live, itself included. */
export async function heartbeat(sql: Sql, workerId: string, liveWithinMs: number): Promise<number> {
  const [row] = await sql.query<{ others: number }>(HEARTBEAT, [workerId, liveWithinMs]);
  return 1 + (row?.others ?? 0);
}

/** Removes `workerId` from the registry (on shutdown). */
export async function unregister(sql: Sql, workerId: string): Promise<void> {
  await sql.query("DELETE FROM workers WHERE id = $1", [workerId]);
}
