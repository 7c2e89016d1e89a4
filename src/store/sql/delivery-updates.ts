/**
 * Reads the delivery status log (table `delivery_updates`, see its migration).
 *
 * A row's position is (xid, seq): the id of the transaction that wrote it,
 * then a sequence. Every read stops below the oldest transaction still
 * running (`pg_snapshot_xmin`): all rows before that bound are final, so a
 * reader that has passed a position never sees a row appear behind it, and
 * resuming after a position misses nothing and repeats nothing.
 */
import type { DeliveryState, UpdateKind } from "../../domain/delivery/state.js";
import type { Sql } from "../sql.js";

/** A place in the status log; rows after it are read. */
export interface Position {
  xid: bigint;
  seq: bigint;
}

/** The position before every row. */
export const START: Position = { xid: 0n, seq: 0n };

/** Orders two positions: negative, zero or positive. */
export function comparePositions(a: Position, b: Position): number {
  if (a.xid !== b.xid) return a.xid < b.xid ? -1 : 1;
  if (a.seq !== b.seq) return a.seq < b.seq ? -1 : 1;
  return 0;
}

/** One status change, as stored. */
export interface UpdateRow {
  position: Position;
  deliveryId: string;
  eventId: string;
  endpointId: string;
  tenantId: string;
  eventType: string;
  kind: UpdateKind;
  /** The delivery's status after the change. */
  status: DeliveryState;
  attemptNumber: number;
  responseStatus: number;
  durationMs: number;
  error: string;
  nextAttemptAt: Date | null;
  occurredAt: Date;
}

/** Which rows to read; empty fields match everything. */
export interface UpdateFilter {
  tenantId: string;
  endpointId: string;
  eventId: string;
  /** Exact event types. */
  eventTypes: readonly string[];
  /** Event type prefixes (from "prefix.*" patterns, kept with the dot). */
  eventTypePrefixes: readonly string[];
  statuses: readonly number[];
}

/** Matches every row. */
export const ALL: UpdateFilter = {
  tenantId: "",
  endpointId: "",
  eventId: "",
  eventTypes: [],
  eventTypePrefixes: [],
  statuses: [],
};

// A log row holds only its delivery's id; the delivery's event, endpoint,
// tenant and type come from its history row (a primary key probe per row
// read), so the log writes no copy of them: 2 rows per delivery with 5 ids
// each cost 516 WAL bytes per delivered event, 340 without the copies
// (`npm run bench:db-cost`). The log is read in its own order (its primary
// key), each row joined to its delivery, filters applied to the joined row.
// Rows whose delivery is gone (retention removes the log first, see
// retention.ts) are not served. Measured on 400,000 log rows of 200,000
// deliveries (EXPLAIN (ANALYZE, BUFFERS)): 500 rows at the log's end, as the
// hub reads it, 1.3 ms (a nested loop of primary key probes, 4 buffers per
// row); a tenant's or endpoint's rows from the log's start, as a watcher
// replaying the whole log reads them, 166-205 ms (a hash join over the log,
// which the copied columns did not spare either: they had no index).
const READ = `
SELECT u.xid::text AS xid_text, u.seq::text AS seq_text, u.delivery_id, d.event_id, d.endpoint_id, d.tenant_id, d.event_type,
       u.kind, u.status, u.attempt_number, u.response_status, u.duration_ms, u.error, u.next_attempt_at, u.occurred_at
FROM delivery_updates u
JOIN deliveries d ON d.id = u.delivery_id
WHERE (u.xid, u.seq) > ($1::xid8, $2::bigint)
  AND (u.xid, u.seq) <= ($3::xid8, $4::bigint)
  AND u.xid < pg_snapshot_xmin(pg_current_snapshot())
  AND ($5 = '' OR d.tenant_id = $5)
  AND ($6 = '' OR d.endpoint_id = $6)
  AND ($7 = '' OR d.event_id = $7)
  AND ((cardinality($8::text[]) = 0 AND cardinality($9::text[]) = 0)
       OR d.event_type = ANY ($8::text[])
       OR EXISTS (SELECT 1 FROM unnest($9::text[]) p WHERE starts_with(d.event_type, p)))
  AND (cardinality($10::smallint[]) = 0 OR u.status = ANY ($10::smallint[]))
-- (Not the text columns above: ORDER BY prefers output names, and "10" < "9".)
ORDER BY u.xid, u.seq
LIMIT $11`;

/** Above every position (the largest xid8 and bigint). */
const END: Position = { xid: 18446744073709551615n, seq: 9223372036854775807n };

interface Row {
  xid_text: string;
  seq_text: string;
  delivery_id: string;
  event_id: string;
  endpoint_id: string;
  tenant_id: string;
  event_type: string;
  kind: UpdateKind;
  status: DeliveryState;
  attempt_number: number;
  response_status: number;
  duration_ms: number;
  error: string;
  /** Text: the ORM's pool leaves timestamps unparsed. */
  next_attempt_at: string | null;
  occurred_at: string;
}

/**
 * Reads up to `limit` final rows after `after` and at most `upTo`, in log
 * order, that match `filter`.
 */
export async function readUpdates(
  sql: Sql,
  after: Position,
  filter: UpdateFilter,
  limit: number,
  upTo: Position = END,
): Promise<UpdateRow[]> {
  const rows = await sql.query<Row>(READ, [
    after.xid.toString(),
    after.seq.toString(),
    upTo.xid.toString(),
    upTo.seq.toString(),
    filter.tenantId,
    filter.endpointId,
    filter.eventId,
    filter.eventTypes,
    filter.eventTypePrefixes,
    filter.statuses,
    limit,
  ]);
  return rows.map((r) => ({
    position: { xid: BigInt(r.xid_text), seq: BigInt(r.seq_text) },
    deliveryId: r.delivery_id,
    eventId: r.event_id,
    endpointId: r.endpoint_id,
    tenantId: r.tenant_id,
    eventType: r.event_type,
    kind: r.kind,
    status: r.status,
    attemptNumber: r.attempt_number,
    responseStatus: r.response_status,
    durationMs: r.duration_ms,
    error: r.error,
    nextAttemptAt: r.next_attempt_at === null ? null : new Date(r.next_attempt_at),
    occurredAt: new Date(r.occurred_at),
  }));
}

const LAST_FINAL = `
SELECT xid::text AS xid_text, seq::text AS seq_text FROM delivery_updates
WHERE xid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY xid DESC, seq DESC
LIMIT 1`;

/** The position of the last final row (START for an empty log): where "live" begins. */
export async function lastFinalPosition(sql: Sql): Promise<Position> {
  const [row] = await sql.query<{ xid_text: string; seq_text: string }>(LAST_FINAL, []);
  return row ? { xid: BigInt(row.xid_text), seq: BigInt(row.seq_text) } : START;
}

const FIRST_SINCE = `
SELECT xid::text AS xid_text, seq::text AS seq_text FROM delivery_updates
WHERE occurred_at >= $1
ORDER BY xid, seq
LIMIT 1`;

/**
 * The position just before the first row (in log order) that occurred at
 * or after `since`, or undefined when there is none yet.
 */
export async function positionBefore(sql: Sql, since: Date): Promise<Position | undefined> {
  const [row] = await sql.query<{ xid_text: string; seq_text: string }>(FIRST_SINCE, [since]);
  return row ? { xid: BigInt(row.xid_text), seq: BigInt(row.seq_text) - 1n } : undefined;
}

/** The cursor clients see for a position. */
export function encodeCursor(p: Position): string {
  return `${p.xid}-${p.seq}`;
}

/** Parses a cursor made by encodeCursor; undefined when it is not one. */
export function decodeCursor(cursor: string): Position | undefined {
  const m = /^(\d{1,20})-(\d{1,19})$/.exec(cursor);
  if (!m) return undefined;
  const p = { xid: BigInt(m[1]!), seq: BigInt(m[2]!) };
  return p.xid <= END.xid && p.seq <= END.seq ? p : undefined;
}
