/**
 * Hookline's tables as the benchmark knows them, the one place it names
 * them: retained history made directly in SQL, and the count of deliveries
 * still under way. (The per-table figures take their tables from
 * `pg_stat_user_tables`, see database-cost.ts.) When the table layout
 * changes, this module changes with it.
 *
 * History is delivered events, each with its delivery (SUCCEEDED after one
 * attempt) and its two status-log rows (created, succeeded, which records
 * the attempt),
 * spread evenly over a past interval, with ids of Hookline's shapes (see
 * src/domain/ids.ts and src/store/sql/insert-events.ts): a ULID after the
 * prefix, its time the row's, its random part hex digits of an md5 (valid
 * Crockford base32 digits, as Hookline's own delivery ids). One function per
 * table makes rows [lo, hi) of the history; the i-th event's every row is
 * computed from i alone, so the functions are independent of each other.
 */
import type pg from "pg";
import { DeliveryState } from "../src/domain/delivery/state.js";
import { ID_PREFIX } from "../src/domain/ids.js";

/** What the history belongs to and when it happened. */
export interface HistoryShape {
  tenantId: string;
  endpointId: string;
  eventType: string;
  /** Delivered events in all. */
  total: number;
  /** Time of the first event and of the last, ms since the epoch. */
  fromMs: number;
  toMs: number;
}

/** Anything that runs a statement: pg.Client, pg.PoolClient. */
type Db = Pick<pg.ClientBase, "query">;

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** SQL: the 10-digit ULID time part of the bigint millisecond expression `ms`. */
function ulidTime(ms: string): string {
  return Array.from({ length: 10 }, (_, k) => `substr('${CROCKFORD}', (((${ms}) >> ${5 * (9 - k)}) & 31)::int + 1, 1)`).join(" || ");
}

/**
 * SQL: the rows [$1, $2) of the history as (i, ms, at, event_id,
 * delivery_id): their number, time (ms and timestamptz) and ids. Parameters:
 * $1 lo, $2 hi, $3 first ms, $4 ms between events, $5 endpoint id.
 */
const SERIES = `
SELECT i, ms, to_timestamp(ms / 1000.0) AS at, event_id,
       '${ID_PREFIX.delivery}' || substr(event_id, ${ID_PREFIX.event.length + 1}, 10) || upper(substr(md5(event_id || $5::text), 1, 16)) AS delivery_id
FROM (SELECT i, ms, '${ID_PREFIX.event}' || ${ulidTime("ms")} || upper(substr(md5('event' || i), 1, 16)) AS event_id
      FROM (SELECT i, $3::bigint + floor(i * $4::float8)::bigint AS ms FROM generate_series($1::bigint, $2::bigint - 1) AS i) t) s`;

function params(h: HistoryShape, lo: number, hi: number): unknown[] {
  return [lo, hi, h.fromMs, (h.toMs - h.fromMs) / Math.max(1, h.total - 1), h.endpointId];
}

/** Events [lo, hi): a body of the shape and size of the benchmark's own (about 300 bytes). */
export async function insertHistoryEvents(db: Db, h: HistoryShape, lo: number, hi: number): Promise<void> {
  await db.query(
    `INSERT INTO events (id, tenant_id, event_type, channels, idempotency_key, body, created_at)
     SELECT event_id, $6, $7, '{}', NULL,
            '{"type":"' || $7 || '","timestamp":"' || to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
              || '","data":{"i":' || i || ',"t":' || ms || ',"pad":"' || repeat('x', 200) || '"}}',
            at
     FROM (${SERIES}) s`,
    [...params(h, lo, hi), h.tenantId, h.eventType],
  );
}

/** Deliveries [lo, hi): succeeded at the first attempt, 3 ms after publishing. */
export async function insertHistoryDeliveries(db: Db, h: HistoryShape, lo: number, hi: number): Promise<void> {
  await db.query(
    `INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status, attempt_count,
                             last_response_status, last_error, created_at, updated_at)
     SELECT delivery_id, event_id, $5, $6, $7, ${DeliveryState.Succeeded}, 1, 200, '', at, at + interval '3 ms'
     FROM (${SERIES}) s`,
    [...params(h, lo, hi), h.tenantId, h.eventType],
  );
}

/**
 * Status-log rows [lo, hi): each delivery's CREATED (kind 1, PENDING) and
 * SUCCEEDED (kind 4), in time order. The SUCCEEDED row records the attempt
 * (started 1 ms after publishing, 200 after 2 ms), as the outcome writer
 * does (see the migration attempts_in_status_log); the log row holds only
 * the delivery's id of its ids.
 */
export async function insertHistoryStatusLog(db: Db, h: HistoryShape, lo: number, hi: number): Promise<void> {
  await db.query(
    `INSERT INTO delivery_updates (delivery_id, kind, status, attempt_number, response_status, duration_ms, error,
                                   next_attempt_at, occurred_at, attempt_id)
     SELECT delivery_id, u.kind, u.status, u.attempt, u.response, u.duration, '', NULL, at + u.after,
            CASE WHEN u.attempt > 0
                 THEN '${ID_PREFIX.attempt}' || ${ulidTime("ms + 1")} || upper(substr(md5('attempt' || i), 1, 16)) END
     FROM (${SERIES}) s
     CROSS JOIN (VALUES (1, ${DeliveryState.Pending}, 0, 0, 0, interval '0'),
                        (4, ${DeliveryState.Succeeded}, 1, 200, 2, interval '3 ms'))
       AS u (kind, status, attempt, response, duration, after)
     ORDER BY i, u.kind`,
    params(h, lo, hi),
  );
}

/** The tables history is written to, for VACUUM. */
const HISTORY_TABLES = ["events", "deliveries", "delivery_updates"];

/**
 * Makes the whole history, `chunk` events per transaction on each of the
 * connections `dbs` in turn (one per core: the inserts are bound by CPU),
 * then vacuums and analyses its tables and checkpoints, as the history of a
 * running system would be (visible to all, with statistics, written out),
 * so that the work measured next does not pay for it.
 *
 * Foreign-key checks and triggers are skipped (`session_replication_role =
 * replica`, as pg_restore does for data, where the role may set it): the
 * rows are consistent by construction, and the triggers only wake Hookline
 * processes, none of which runs meanwhile. That halved the time; 500,000
 * events took 70 s on this (busy) machine, vacuum and checkpoint included.
 */
export async function generateHistory(
  dbs: readonly Db[],
  h: HistoryShape,
  progress: (done: number) => void = () => {},
  chunk = 100_000,
): Promise<void> {
  for (const db of dbs) await db.query("SET session_replication_role = replica").catch(() => {});
  let next = 0;
  let done = 0;
  await Promise.all(
    dbs.map(async (db) => {
      while (next < h.total) {
        const lo = next;
        const hi = Math.min(h.total, lo + chunk);
        next = hi;
        await db.query("BEGIN");
        try {
          await insertHistoryEvents(db, h, lo, hi);
          await insertHistoryDeliveries(db, h, lo, hi);
          await insertHistoryStatusLog(db, h, lo, hi);
          await db.query("COMMIT");
        } catch (err) {
          await db.query("ROLLBACK");
          throw err;
        }
        done += hi - lo;
        progress(done);
      }
    }),
  );
  for (const db of dbs) await db.query("RESET session_replication_role");
  await dbs[0]!.query(`VACUUM (ANALYZE) ${HISTORY_TABLES.join(", ")}`);
  try {
    await dbs[0]!.query("CHECKPOINT");
  } catch {
    // Not allowed to this role (DATABASE_URL): the server checkpoints in its own time.
  }
}

/** Deliveries still under way (waiting or being attempted); 0 once Hookline has nothing left to do. */
export async function liveDeliveries(db: { query<R>(text: string, values?: unknown[]): Promise<R[]> }): Promise<number> {
  const [row] = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM delivery_queue`);
  return row!.n;
}
