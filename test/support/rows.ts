/**
 * Rows written straight into a test database and read back from it, for
 * unit tests of the SQL operations: endpoints, events and deliveries in the
 * states a test needs, without going through the API, and what the
 * operations left behind, in the shapes the tests assert on.
 *
 * This is the one place that knows the table layout: when the tables
 * change, these helpers change, and the tests that use them do not.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { expect } from "vitest";
import { firstIdAt, type IdKind } from "../../src/domain/ids.js";
import type { TestDatabase } from "./database.js";

const id = (prefix: string) => `${prefix}_${randomBytes(8).toString("hex")}`;

/**
 * `n` ids of `kind` made at `at`, sorted: the time part as real ids have
 * it, then 16 random hex digits (valid Crockford base32 digits too), far
 * cheaper than a ULID's random part for the tests' large backlogs.
 */
function idsAt(kind: IdKind, at: Date, n: number): string[] {
  const time = firstIdAt(kind, at).slice(0, -16);
  const random = randomBytes(8 * n).toString("hex").toUpperCase();
  return Array.from({ length: n }, (_, i) => time + random.slice(16 * i, 16 * (i + 1))).sort();
}

/** Empties every table the delivery engine writes, so each test starts from nothing. */
export async function emptyTables(db: TestDatabase): Promise<void> {
  await db.query("TRUNCATE endpoints, events, deliveries, delivery_queue, attempts, delivery_updates, idempotency_keys, workers");
}

/** Columns of an endpoint a test may set. */
export interface EndpointRow {
  tenantId?: string;
  maxInFlight?: number | null;
  consecutiveFailures?: number;
  /** SQL expression, e.g. "now() + interval '1 hour'". */
  circuitOpenUntil?: string;
  circuitProbeUntil?: string;
  circuitCooldownMs?: number | null;
  /** SQL expression: when its current run of failures began. */
  failingSince?: string;
  ordered?: boolean;
  /** Event type patterns ("invoice.paid", "invoice.*"); none means every type. */
  eventTypes?: string[];
  /** Channels; none means every channel. */
  channels?: string[];
  disabled?: boolean;
  disabledReason?: string;
  deleted?: boolean;
}

/** Inserts an endpoint; returns its id. */
export async function insertEndpoint(db: TestDatabase, row: EndpointRow = {}): Promise<string> {
  const endpointId = id("ep");
  await db.query(
    `INSERT INTO endpoints (id, tenant_id, url, secrets, max_in_flight, consecutive_failures, ordered, event_types, channels,
                           disabled, disabled_reason, circuit_cooldown_ms, deleted_at, circuit_open_until, circuit_probe_until, failing_since)
     VALUES ($1, $2, 'http://127.0.0.1:9/hook', '[{"secret":"whsec_x","expiresAt":null}]', $3, $4, $5, $6, $7, $8, $9, $10,
             CASE WHEN $11 THEN now() END,
             ${row.circuitOpenUntil ?? "NULL"}, ${row.circuitProbeUntil ?? "NULL"}, ${row.failingSince ?? "NULL"})`,
    [
      endpointId,
      row.tenantId ?? "t",
      row.maxInFlight ?? null,
      row.consecutiveFailures ?? 0,
      row.ordered ?? false,
      row.eventTypes ?? [],
      row.channels ?? [],
      row.disabled ?? false,
      row.disabledReason ?? "",
      row.circuitCooldownMs ?? null,
      row.deleted ?? false,
    ],
  );
  return endpointId;
}

/** Columns of a delivery a test may set. */
export interface DeliveryRow {
  /** 1 PENDING, 2 RETRYING, 3 SUCCEEDED, 4 FAILED. */
  status?: number;
  /** SQL expression; due now by default. "NULL" parks it (ordered endpoints) or marks it ended. */
  nextAttemptAt?: string;
  lockedBy?: string | null;
  attemptCount?: number;
  /** When its event was published: the event's and the delivery's ids carry this time, as real ones do. Now by default. */
  publishedAt?: Date;
  /** SQL expression for the delivery's last change; now by default. */
  updatedAt?: string;
}

/** Inserts `n` deliveries (each with its event) to `endpointId`; returns their ids in order (of ids and of seq). */
export async function insertDeliveries(db: TestDatabase, endpointId: string, n: number, row: DeliveryRow = {}): Promise<string[]> {
  const at = row.publishedAt ?? new Date();
  // Sorted, so ids and seq agree.
  const eventIds = idsAt("event", at, n);
  const deliveryIds = idsAt("delivery", at, n);
  await db.query(
    `WITH ep AS (SELECT id, tenant_id FROM endpoints WHERE id = $1),
     input AS (SELECT * FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS i (event_id, delivery_id, ord)),
     ev AS (
       INSERT INTO events (id, tenant_id, event_type, body, created_at)
       SELECT i.event_id, ep.tenant_id, 'e', '{}', $7 FROM ep, input i ORDER BY i.ord
     ),
     d AS (
       INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status, attempt_count, created_at, updated_at)
       SELECT i.delivery_id, i.event_id, $1, ep.tenant_id, 'e', $4, $6, $7, ${row.updatedAt ?? "now()"}
       FROM ep, input i ORDER BY i.ord
       RETURNING id, event_id, endpoint_id, tenant_id, seq, status, attempt_count
     )
     -- Live ones (PENDING, RETRYING) wait in the queue, with their due time and lease.
     INSERT INTO delivery_queue (delivery_id, endpoint_id, tenant_id, seq, attempt_count, due_at, locked_by)
     -- On a whole millisecond, as leases are (a JavaScript Date holds the lease's token exactly).
     SELECT id, endpoint_id, tenant_id, seq, attempt_count, date_trunc('milliseconds', (${row.nextAttemptAt ?? "now() - interval '1 second'"})::timestamptz), $5
     FROM d WHERE status IN (1, 2)`,
    [endpointId, eventIds, deliveryIds, row.status ?? 1, row.lockedBy ?? null, row.attemptCount ?? 0, at],
  );
  return deliveryIds;
}

/**
 * The lease each of `deliveryIds` holds now, by id: its queue row's due
 * time, the lease's token (see ClaimedDelivery.leaseUntil); none without a
 * queue row.
 */
export async function leasesOf(db: TestDatabase, deliveryIds: readonly string[]): Promise<Map<string, Date>> {
  const rows = await db.query<{ delivery_id: string; due_at: Date | null }>(
    "SELECT delivery_id, due_at FROM delivery_queue WHERE delivery_id = ANY ($1)",
    [deliveryIds],
  );
  return new Map(rows.flatMap((r) => (r.due_at ? [[r.delivery_id, r.due_at] as const] : [])));
}

/** Inserts an event of `tenantId` published at `publishedAt`, with no delivery; returns its id. */
export async function insertEventRow(db: TestDatabase, tenantId = "t", publishedAt = new Date()): Promise<string> {
  const [eventId] = idsAt("event", publishedAt, 1);
  await db.query("INSERT INTO events (id, tenant_id, event_type, body, created_at) VALUES ($1, $2, 'e', '{}', $3)", [
    eventId,
    tenantId,
    publishedAt,
  ]);
  return eventId!;
}

/** Inserts attempt `number` of `deliveryId` (a 500 answer); returns its id. */
export async function insertAttempt(db: TestDatabase, deliveryId: string, number = 1): Promise<string> {
  const attemptId = id("atm");
  await db.query(
    `INSERT INTO attempts (id, delivery_id, number, started_at, duration_ms, response_status, error)
     VALUES ($1, $2, $3, now(), 5, 500, 'HTTP 500')`,
    [attemptId, deliveryId, number],
  );
  return attemptId;
}

/** Logs a CREATED status change of each of `deliveryIds`, occurred at `occurredAt` (SQL expression). */
export async function insertStatusLogRows(db: TestDatabase, deliveryIds: readonly string[], occurredAt = "now()"): Promise<void> {
  await db.query(
    `INSERT INTO delivery_updates (delivery_id, kind, status, occurred_at)
     SELECT id, 1, 1, ${occurredAt} FROM deliveries WHERE id = ANY ($1)`,
    [deliveryIds],
  );
}

/** Takes idempotency key `key` of `tenantId` for `eventId` until `expiresAt` (SQL expression). */
export async function insertIdempotencyKey(db: TestDatabase, tenantId: string, key: string, eventId: string, expiresAt: string): Promise<void> {
  await db.query(`INSERT INTO idempotency_keys (tenant_id, key, event_id, expires_at) VALUES ($1, $2, $3, ${expiresAt})`, [
    tenantId,
    key,
    eventId,
  ]);
}

/** Registers scheduler process `workerId` with its last heartbeat at `heartbeatAt` (SQL expression). */
export async function insertWorker(db: TestDatabase, workerId: string, heartbeatAt = "now()"): Promise<void> {
  await db.query(`INSERT INTO workers (id, heartbeat_at) VALUES ($1, ${heartbeatAt})`, [workerId]);
}

/** A delivery as the tests read it back. */
export interface StoredDelivery {
  id: string;
  eventId: string;
  endpointId: string;
  tenantId: string;
  status: number;
  attemptCount: number;
  lockedBy: string | null;
  nextAttemptAt: Date | null;
  /** Seconds from now to its next attempt, rounded; null when it has none (ended, or parked). */
  dueInS: number | null;
  lastResponseStatus: number;
  lastError: string;
}

/** A delivery's history row and, while it is live, its queue row (due time, lease). */
const DELIVERY_COLUMNS = `d.id, d.event_id AS "eventId", d.endpoint_id AS "endpointId", d.tenant_id AS "tenantId", d.status,
  d.attempt_count AS "attemptCount", q.locked_by AS "lockedBy", q.due_at AS "nextAttemptAt",
  round(extract(epoch FROM q.due_at - now()))::int AS "dueInS",
  d.last_response_status AS "lastResponseStatus", d.last_error AS "lastError"
  FROM deliveries d LEFT JOIN delivery_queue q ON q.delivery_id = d.id`;

/** Reads delivery `deliveryId`; undefined when there is none. */
export async function readDelivery(db: TestDatabase, deliveryId: string): Promise<StoredDelivery | undefined> {
  return (await db.query<StoredDelivery & Record<string, unknown>>(`SELECT ${DELIVERY_COLUMNS} WHERE d.id = $1`, [deliveryId]))[0];
}

/** The deliveries of `endpointId`, in publish order. */
export async function deliveriesOf(db: TestDatabase, endpointId: string): Promise<StoredDelivery[]> {
  return db.query<StoredDelivery & Record<string, unknown>>(`SELECT ${DELIVERY_COLUMNS} WHERE d.endpoint_id = $1 ORDER BY d.seq`, [
    endpointId,
  ]);
}

/** Each delivery's next attempt, in seconds from now (rounded; null for none), by id. */
export async function dueIn(db: TestDatabase, deliveryIds: readonly string[]): Promise<Map<string, number | null>> {
  const rows = await db.query<{ id: string; s: number | null }>(
    "SELECT d.id, round(extract(epoch FROM q.due_at - now()))::int AS s FROM deliveries d LEFT JOIN delivery_queue q ON q.delivery_id = d.id WHERE d.id = ANY ($1)",
    [deliveryIds],
  );
  return new Map(rows.map((r) => [r.id, r.s]));
}

/** An endpoint's health as the tests read it back. */
export interface StoredEndpointHealth {
  consecutiveFailures: number;
  failingSince: Date | null;
  circuitOpenUntil: Date | null;
  /** Seconds from now until its circuit closes, rounded; null when it is not open. */
  circuitOpenForS: number | null;
  circuitProbeUntil: Date | null;
  circuitCooldownMs: number | null;
  lastError: string;
  disabled: boolean;
  disabledReason: string;
}

/** Reads the health columns of endpoint `endpointId`. */
export async function readEndpointHealth(db: TestDatabase, endpointId: string): Promise<StoredEndpointHealth> {
  const [row] = await db.query<StoredEndpointHealth & Record<string, unknown>>(
    `SELECT consecutive_failures AS "consecutiveFailures", failing_since AS "failingSince",
            circuit_open_until AS "circuitOpenUntil",
            round(extract(epoch FROM circuit_open_until - now()))::int AS "circuitOpenForS",
            circuit_probe_until AS "circuitProbeUntil", circuit_cooldown_ms AS "circuitCooldownMs",
            last_error AS "lastError", disabled, disabled_reason AS "disabledReason"
     FROM endpoints WHERE id = $1`,
    [endpointId],
  );
  if (!row) throw new Error(`no endpoint ${endpointId}`);
  return row;
}

/** An attempt as the tests read it back. */
export interface StoredAttempt {
  id: string;
  deliveryId: string;
  number: number;
  startedAt: Date;
  durationMs: number;
  responseStatus: number;
  errorClass: string;
  error: string;
  responseBody: string;
  responseHeaders: Record<string, string> | null;
}

/** The attempts of `deliveryId`, by number. */
export async function attemptsOf(db: TestDatabase, deliveryId: string): Promise<StoredAttempt[]> {
  return db.query<StoredAttempt & Record<string, unknown>>(
    `SELECT id, delivery_id AS "deliveryId", number, started_at AS "startedAt", duration_ms AS "durationMs",
            response_status AS "responseStatus", error_class AS "errorClass", error, response_body AS "responseBody",
            response_headers AS "responseHeaders"
     FROM delivery_attempts WHERE delivery_id = $1 ORDER BY number, id`,
    [deliveryId],
  );
}

/** A status log row (see delivery-updates.ts) as the tests read it back. */
export interface StoredStatusChange {
  deliveryId: string;
  eventId: string;
  endpointId: string;
  tenantId: string;
  eventType: string;
  /** DeliveryUpdateKind. */
  kind: number;
  /** DeliveryState after the change. */
  status: number;
  attemptNumber: number;
  responseStatus: number;
  durationMs: number;
  error: string;
  nextAttemptAt: Date | null;
  occurredAt: Date;
}

/** The status log rows of `deliveryIds`, in log order. */
export async function statusLogOf(db: TestDatabase, deliveryIds: readonly string[]): Promise<StoredStatusChange[]> {
  return db.query<StoredStatusChange & Record<string, unknown>>(
    // (The log holds the delivery's id; the rest is its delivery's.)
    `SELECT u.delivery_id AS "deliveryId", d.event_id AS "eventId", d.endpoint_id AS "endpointId", d.tenant_id AS "tenantId",
            d.event_type AS "eventType", u.kind, u.status, u.attempt_number AS "attemptNumber", u.response_status AS "responseStatus",
            u.duration_ms AS "durationMs", u.error, u.next_attempt_at AS "nextAttemptAt", u.occurred_at AS "occurredAt"
     FROM delivery_updates u JOIN deliveries d ON d.id = u.delivery_id
     WHERE u.delivery_id = ANY ($1) ORDER BY u.xid, u.seq`,
    [deliveryIds],
  );
}

/** An event as the tests read it back. */
export interface StoredEvent {
  id: string;
  tenantId: string;
  eventType: string;
  channels: string[];
  idempotencyKey: string | null;
  body: string;
}

/** Reads event `eventId`; undefined when there is none. */
export async function readEvent(db: TestDatabase, eventId: string): Promise<StoredEvent | undefined> {
  const [row] = await db.query<StoredEvent & Record<string, unknown>>(
    `SELECT id, tenant_id AS "tenantId", event_type AS "eventType", channels, idempotency_key AS "idempotencyKey", body
     FROM events WHERE id = $1`,
    [eventId],
  );
  return row;
}

/** How many rows each kind of stored thing has. */
export interface RowCounts {
  events: number;
  deliveries: number;
  attempts: number;
  statusLog: number;
  idempotencyKeys: number;
  workers: number;
}

/** Counts the rows of every kind (see {@link RowCounts}). */
export async function rowCounts(db: TestDatabase): Promise<RowCounts> {
  const [row] = await db.query<RowCounts & Record<string, unknown>>(
    `SELECT (SELECT count(*) FROM events)::int AS events, (SELECT count(*) FROM deliveries)::int AS deliveries,
            (SELECT count(*) FROM delivery_attempts)::int AS attempts, (SELECT count(*) FROM delivery_updates)::int AS "statusLog",
            (SELECT count(*) FROM idempotency_keys)::int AS "idempotencyKeys", (SELECT count(*) FROM workers)::int AS workers`,
  );
  return row!;
}

/** The registered scheduler processes' ids, sorted. */
export async function workerIds(db: TestDatabase): Promise<string[]> {
  return (await db.query<{ id: string }>("SELECT id FROM workers ORDER BY id")).map((r) => r.id);
}

/** The idempotency keys held, as "tenant/key", sorted. */
export async function idempotencyKeys(db: TestDatabase): Promise<string[]> {
  return (await db.query<{ k: string }>("SELECT tenant_id || '/' || key AS k FROM idempotency_keys ORDER BY 1")).map((r) => r.k);
}

/** A lock a test holds on the tables a statement needs, until it releases it. */
export interface HeldLock {
  /** The backends waiting for it, once there is one (those running a claim only, for blockClaims). */
  waiters(): Promise<number[]>;
  release(): Promise<void>;
}

/** Holds `lock` (a LOCK TABLE statement) on a connection of its own; `waiting` selects the backends that count as its waiters (SQL on pg_stat_activity). */
async function holdLock(db: TestDatabase, lock: string, waiting = "true"): Promise<HeldLock> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  await c.query("BEGIN");
  await c.query(lock);
  const pid = (await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
  return {
    async waiters() {
      let pids: number[] = [];
      await expect
        .poll(
          async () => {
            const rows = await db.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid)) AND ${waiting}`, [pid]);
            pids = rows.map((r) => r.pid);
            return pids.length;
          },
          { timeout: 10_000, interval: 10 },
        )
        .toBeGreaterThan(0);
      return pids;
    },
    async release() {
      await c.query("COMMIT");
      await c.end();
    },
  };
}

/** Holds off every write of attempt outcomes (recordOutcomes) until released. */
export function blockOutcomeWrites(db: TestDatabase): Promise<HeldLock> {
  return holdLock(db, "LOCK TABLE attempts IN ACCESS EXCLUSIVE MODE");
}

/** Holds row locks on the queue rows of `deliveryIds` until released: any statement that changes those rows waits. */
export function lockQueueRows(db: TestDatabase, deliveryIds: readonly string[]): Promise<HeldLock> {
  const ids = deliveryIds.map((id) => `'${id.replaceAll("'", "''")}'`).join(", ");
  return holdLock(db, `SELECT 1 FROM delivery_queue WHERE delivery_id IN (${ids}) FOR UPDATE`);
}

/**
 * Holds off claims (claimDue, which updates endpoints for a probe's lease)
 * until released, and not publishes (which only read endpoints).
 */
export function blockClaims(db: TestDatabase): Promise<HeldLock> {
  // pg_stat_activity keeps the first 1 kB of a statement: the claim's begins with its lanes.
  return holdLock(db, "LOCK TABLE endpoints IN SHARE MODE", "query LIKE '%WITH lanes AS%'");
}
