/**
 * Hookline's tables as the benchmark knows them, the one place it names
 * them. (The per-table figures take their tables from `pg_stat_user_tables`,
 * see database-cost.ts.) When the table layout changes, this module changes
 * with it.
 */
import { LIVE_STATES } from "../src/store/sql/states.js";

/** Deliveries still under way (waiting or being attempted); 0 once Hookline has nothing left to do. */
export async function liveDeliveries(db: { query<R>(text: string, values?: unknown[]): Promise<R[]> }): Promise<number> {
  const [row] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM deliveries WHERE status IN ${LIVE_STATES}`);
  return row!.n;
}
