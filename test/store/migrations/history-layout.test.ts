/**
 * The migrations history_indexes, slim_status_log, attempts_in_status_log,
 * deliveries_by_event and queue_without_event on a database built on engine v2's first layout
 * (delivery_queue), with deliveries in every state: nothing of the history
 * is lost (every delivery, attempt and status log row; what the log rows
 * said about their delivery is what the readers now join; the attempts read
 * as before; an event's deliveries are found without the index on
 * event_id), the indexes are the new ones, and a Hookline started on it
 * delivers the pending deliveries, each attempt recorded once, in its
 * status log row.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeliveryState, UpdateKind } from "../../../src/domain/delivery/state.js";
import { openOrm } from "../../../src/store/orm.js";
import { ofEvent } from "../../../src/store/sql/deliveries-of-event.js";
import { ALL, readUpdates, START } from "../../../src/store/sql/delivery-updates.js";
import type { Sql } from "../../../src/store/sql.js";
import { createTestDatabase, type TestDatabase } from "../../support/database.js";
import { startTestHookline } from "../../support/hookline.js";
import { type Receiver, startReceiver } from "../../support/receiver.js";

/** The last migration of the previous layout. */
const OLD_LAYOUT = "Migration20261207110000_delivery_queue";

let db: TestDatabase;
let r: Receiver;
/** The test database as the store's readers take it. */
const sql: Sql = { query: (text, values) => db.query(text, values) as never };

beforeAll(async () => {
  db = await createTestDatabase({ empty: true });
  r = await startReceiver();
});

afterAll(async () => {
  await r?.close();
  await db?.drop();
});

/** One delivery of each state the previous layout could hold, by name: its queue row (or none) and its attempts. */
const ROWS = {
  pending: { status: DeliveryState.Pending, due: "now() - interval '1 second'", lockedBy: null, attempts: 0, queued: true },
  retrying: { status: DeliveryState.Retrying, due: "now() - interval '1 second'", lockedBy: null, attempts: 2, queued: true },
  leased: { status: DeliveryState.Retrying, due: "now() + interval '1 hour'", lockedBy: "other-worker", attempts: 1, queued: true },
  succeeded: { status: DeliveryState.Succeeded, due: "NULL", lockedBy: null, attempts: 1, queued: false },
  failed: { status: DeliveryState.Failed, due: "NULL", lockedBy: null, attempts: 3, queued: false },
} as const;
type Name = keyof typeof ROWS;
const id = (name: Name) => `dlv_01JMIGRATE${name.toUpperCase().padEnd(15, "0")}`;

/** Each delivery's status log as the old layout held it, with its copies of the delivery's ids. */
const LOG = `SELECT xid::text AS xid, seq::text AS seq, delivery_id, event_id, endpoint_id, tenant_id, event_type, kind, status, attempt_number
             FROM delivery_updates ORDER BY xid, seq`;

describe("the history layout migrations of issue 16", () => {
  it("keep the history, serve the log from the history rows, and the pending deliveries are delivered", async () => {
    const orm = await openOrm({ url: db.url, poolSize: 2 });
    await orm.getMigrator().up({ to: OLD_LAYOUT });
    await db.query(
      `INSERT INTO endpoints (id, tenant_id, url, secrets)
       VALUES ('ep_migrate', 't', $1, '[{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","expiresAt":null}]')`,
      [`${r.url}/migrated`],
    );
    for (const [name, row] of Object.entries(ROWS) as [Name, (typeof ROWS)[Name]][]) {
      await db.query(`INSERT INTO events (id, tenant_id, event_type, body) VALUES ($1, 't', $2, '{"n":1}')`, [`evt_${name}`, `m.${name}`]);
      await db.query(
        `INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status, attempt_count)
         VALUES ($1, $2, 'ep_migrate', 't', $3, $4, $5)`,
        [id(name), `evt_${name}`, `m.${name}`, row.status, row.attempts],
      );
      if (row.queued) {
        await db.query(
          `INSERT INTO delivery_queue (delivery_id, endpoint_id, tenant_id, event_id, seq, attempt_count, due_at, locked_by)
           SELECT id, endpoint_id, tenant_id, event_id, seq, attempt_count, ${row.due}, $2 FROM deliveries WHERE id = $1`,
          [id(name), row.lockedBy],
        );
      }
      await db.query(
        `INSERT INTO delivery_updates (delivery_id, event_id, endpoint_id, tenant_id, event_type, kind, status)
         VALUES ($1, $2, 'ep_migrate', 't', $3, $4, $5)`,
        [id(name), `evt_${name}`, `m.${name}`, UpdateKind.Created, DeliveryState.Pending],
      );
      for (let n = 1; n <= row.attempts; n++) {
        await db.query(
          `INSERT INTO attempts (id, delivery_id, number, started_at, duration_ms, response_status)
           VALUES ($1, $2, $3, now() - interval '1 minute', 5, 500)`,
          [`atm_${name}_${n}`, id(name), n],
        );
        const after = n < row.attempts || row.status === DeliveryState.Retrying ? DeliveryState.Retrying : row.status;
        const kind = after === DeliveryState.Retrying ? UpdateKind.RetryScheduled : after === DeliveryState.Failed ? UpdateKind.Failed : UpdateKind.Succeeded;
        await db.query(
          `INSERT INTO delivery_updates (delivery_id, event_id, endpoint_id, tenant_id, event_type, kind, status, attempt_number, response_status)
           VALUES ($1, $2, 'ep_migrate', 't', $3, $4, $5, $6, 500)`,
          [id(name), `evt_${name}`, `m.${name}`, kind, after, n],
        );
      }
    }
    const count = async (table: string) => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`))[0]!.n);
    const before = {
      deliveries: await count("deliveries"),
      queue: await count("delivery_queue"),
      attempts: await count("attempts"),
      updates: await count("delivery_updates"),
      events: await count("events"),
    };
    const oldLog = await db.query<Record<string, unknown>>(LOG);
    const ATTEMPTS = "SELECT id, delivery_id, number, started_at, duration_ms, response_status, error_class, error, response_body, response_headers";
    const oldAttempts = await db.query(`${ATTEMPTS} FROM attempts ORDER BY id`);

    await orm.getMigrator().up();
    await orm.close(true);

    // Nothing of the history is lost.
    expect({
      deliveries: await count("deliveries"),
      queue: await count("delivery_queue"),
      attempts: await count("attempts"),
      updates: await count("delivery_updates"),
      events: await count("events"),
    }).toEqual(before);
    // Every attempt reads as it did.
    expect(await db.query(`${ATTEMPTS} FROM delivery_attempts ORDER BY id`)).toEqual(oldAttempts);
    // The log as its reader serves it: every row, in the same order and at
    // the same position, with its delivery's ids, as the old rows held them.
    const served = await readUpdates(sql, START, ALL, 1_000);
    expect(
      served.map((u) => ({
        xid: u.position.xid.toString(),
        seq: u.position.seq.toString(),
        delivery_id: u.deliveryId,
        event_id: u.eventId,
        endpoint_id: u.endpointId,
        tenant_id: u.tenantId,
        event_type: u.eventType,
        kind: u.kind,
        status: u.status,
        attempt_number: u.attemptNumber,
      })),
    ).toEqual(oldLog);
    // Filters work on the joined row.
    const ofFailed = await readUpdates(sql, START, { ...ALL, eventTypes: ["m.failed"] }, 1_000);
    expect(ofFailed.map((u) => u.deliveryId)).toEqual(Array(4).fill(id("failed")));
    // The log keeps no copies; the history's lists read ascending indexes; attempts have no primary key.
    const columns = await db.query<{ column_name: string }>(
      "SELECT column_name FROM information_schema.columns WHERE table_name = 'delivery_updates'",
    );
    expect(columns.map((c) => c.column_name)).not.toEqual(expect.arrayContaining(["event_id"]));
    for (const c of ["endpoint_id", "tenant_id", "event_type"]) expect(columns.map((x) => x.column_name)).not.toContain(c);
    const indexes = new Map(
      (await db.query<{ indexname: string; indexdef: string }>("SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('deliveries', 'attempts')")).map(
        (i) => [i.indexname, i.indexdef],
      ),
    );
    expect(indexes.get("deliveries_tenant_idx")).toMatch(/\(tenant_id, id\)$/);
    expect(indexes.get("deliveries_endpoint_idx")).toMatch(/\(endpoint_id, id\)$/);
    expect(indexes.has("attempts_pkey")).toBe(false);
    // The queue keeps its rows, without a copy of the event's id.
    const queueColumns = await db.query<{ column_name: string }>(
      "SELECT column_name FROM information_schema.columns WHERE table_name = 'delivery_queue'",
    );
    expect(queueColumns.map((c) => c.column_name)).not.toContain("event_id");
    // An event's deliveries made with the old ids are found without the index on event_id.
    expect(indexes.has("deliveries_event_idx")).toBe(false);
    for (const name of Object.keys(ROWS) as Name[]) {
      const found = await db.query<{ id: string }>(`SELECT id FROM deliveries d WHERE ${ofEvent("d", "$1::text")}`, [`evt_${name}`]);
      expect(found).toEqual([{ id: id(name) }]);
    }

    // A Hookline on the migrated database delivers what is due and logs it.
    const app = await startTestHookline(db.url);
    try {
      const statusOf = async () =>
        new Map((await db.query<{ id: string; status: number }>("SELECT id, status FROM deliveries")).map((d) => [d.id, d.status]));
      await expect
        .poll(async () => {
          const s = await statusOf();
          return [id("pending"), id("retrying")].map((d) => s.get(d));
        }, { timeout: 10_000 })
        .toEqual(Array(2).fill(DeliveryState.Succeeded));
      const s = await statusOf();
      // A lease that may still be held waits; ended deliveries stay as they were.
      expect([s.get(id("leased")), s.get(id("succeeded")), s.get(id("failed"))]).toEqual([
        DeliveryState.Retrying,
        DeliveryState.Succeeded,
        DeliveryState.Failed,
      ]);
      expect(r.requests.filter((q) => q.path === "/migrated")).toHaveLength(2);
      const after = await readUpdates(sql, served.at(-1)!.position, ALL, 1_000);
      expect(after.map((u) => [u.deliveryId, u.eventType, u.kind]).sort()).toEqual(
        [
          [id("pending"), "m.pending", UpdateKind.Succeeded],
          [id("retrying"), "m.retrying", UpdateKind.Succeeded],
        ].sort(),
      );
      // Each new attempt recorded once, in the log row of its outcome.
      expect(await count("attempts")).toBe(before.attempts);
      expect(await count("delivery_attempts")).toBe(before.attempts + 2);
      const recorded = await db.query<{ delivery_id: string; number: number; response_status: number }>(
        "SELECT delivery_id, number, response_status FROM delivery_attempts WHERE id NOT IN (SELECT id FROM attempts) ORDER BY delivery_id",
      );
      expect(recorded).toEqual([
        { delivery_id: id("pending"), number: 1, response_status: 200 },
        { delivery_id: id("retrying"), number: 3, response_status: 200 },
      ]);
    } finally {
      await app.stop();
    }
  });
});
