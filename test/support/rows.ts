/**
 * Rows written straight into a test database, for unit tests of the SQL
 * operations: endpoints, events and deliveries in the states a test needs,
 * without going through the API.
 */
import { randomBytes } from "node:crypto";
import type { TestDatabase } from "./database.js";

const id = (prefix: string) => `${prefix}_${randomBytes(8).toString("hex")}`;

/** Columns of an endpoint a test may set. */
export interface EndpointRow {
  tenantId?: string;
  maxInFlight?: number | null;
  consecutiveFailures?: number;
  /** SQL expression, e.g. "now() + interval '1 hour'". */
  circuitOpenUntil?: string;
  circuitProbeUntil?: string;
  ordered?: boolean;
}

/** Inserts an endpoint; returns its id. */
export async function insertEndpoint(db: TestDatabase, row: EndpointRow = {}): Promise<string> {
  const endpointId = id("ep");
  await db.query(
    `INSERT INTO endpoints (id, tenant_id, url, secrets, max_in_flight, consecutive_failures, ordered, circuit_open_until, circuit_probe_until)
     VALUES ($1, $2, 'http://127.0.0.1:9/hook', '[{"secret":"whsec_x","expiresAt":null}]', $3, $4, $5,
             ${row.circuitOpenUntil ?? "NULL"}, ${row.circuitProbeUntil ?? "NULL"})`,
    [endpointId, row.tenantId ?? "t", row.maxInFlight ?? null, row.consecutiveFailures ?? 0, row.ordered ?? false],
  );
  return endpointId;
}

/** Columns of a delivery a test may set. */
export interface DeliveryRow {
  /** 1 PENDING, 2 RETRYING, 3 SUCCEEDED, 4 FAILED. */
  status?: number;
  /** SQL expression for its due time in the queue (live ones only); due now by default. */
  nextAttemptAt?: string;
  lockedBy?: string | null;
}

/** Inserts `n` deliveries (each with its event) to `endpointId`; returns their ids in order. */
export async function insertDeliveries(db: TestDatabase, endpointId: string, n: number, row: DeliveryRow = {}): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    `WITH ep AS (SELECT id, tenant_id FROM endpoints WHERE id = $1),
     ev AS (
       INSERT INTO events (id, tenant_id, event_type, body)
       SELECT 'evt_' || md5(random()::text || g), ep.tenant_id, 'e', '{}' FROM ep, generate_series(1, $2) g
       RETURNING id, tenant_id
     ),
     d AS (
       INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status)
       SELECT 'dlv_' || md5(ev.id), ev.id, $1, ev.tenant_id, 'e', $3
       FROM ev ORDER BY ev.id
       RETURNING id, event_id, endpoint_id, tenant_id, seq, status
     ),
     -- Live ones wait in the queue.
     q AS (
       INSERT INTO delivery_queue (delivery_id, endpoint_id, tenant_id, event_id, seq, due_at, locked_by)
       SELECT id, endpoint_id, tenant_id, event_id, seq, ${row.nextAttemptAt ?? "now() - interval '1 second'"}, $4
       FROM d WHERE status IN (1, 2)
     )
     SELECT id FROM d ORDER BY seq`,
    [endpointId, n, row.status ?? 1, row.lockedBy ?? null],
  );
  return rows.map((r) => r.id);
}
