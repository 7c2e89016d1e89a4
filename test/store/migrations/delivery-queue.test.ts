/**
 * The migration to engine v2's layout (delivery_queue) on a database built
 * on the old layout, with deliveries in every state: nothing of the history
 * is lost, the live deliveries move into the queue with their due time,
 * lease and attempt count, and a Hookline started on it delivers the pending
 * ones.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeliveryState } from "../../../src/domain/delivery/state.js";
import { openOrm } from "../../../src/store/orm.js";
import { createTestDatabase, type TestDatabase } from "../../support/database.js";
import { startTestHookline } from "../../support/hookline.js";
import { type Receiver, startReceiver } from "../../support/receiver.js";

/** The last migration of the old layout. */
const OLD_LAYOUT = "Migration20261207100000_hot_path_foreign_keys";

let db: TestDatabase;
let r: Receiver;

beforeAll(async () => {
  db = await createTestDatabase({ empty: true });
  r = await startReceiver();
});

afterAll(async () => {
  await r?.close();
  await db?.drop();
});

/** One delivery of each kind the old layout could hold, by name. */
const ROWS = {
  // Live, due now.
  pending: { status: DeliveryState.Pending, next: "now() - interval '1 second'", lockedBy: null, attempts: 0 },
  // Live, a retry due now after two failed attempts.
  retrying: { status: DeliveryState.Retrying, next: "now() - interval '1 second'", lockedBy: null, attempts: 2 },
  // Live, leased by a process that died: its lease has lapsed.
  lapsed: { status: DeliveryState.Pending, next: "now() - interval '5 seconds'", lockedBy: "dead-worker", attempts: 0 },
  // Live, leased by a process that may still be running: the lease holds.
  leased: { status: DeliveryState.Retrying, next: "now() + interval '1 hour'", lockedBy: "other-worker", attempts: 1 },
  // Live, a retry due later.
  later: { status: DeliveryState.Retrying, next: "now() + interval '1 hour'", lockedBy: null, attempts: 1 },
  // Ended.
  succeeded: { status: DeliveryState.Succeeded, next: "NULL", lockedBy: null, attempts: 1 },
  failed: { status: DeliveryState.Failed, next: "NULL", lockedBy: null, attempts: 3 },
} as const;
type Name = keyof typeof ROWS;
const id = (name: Name) => `dlv_01JMIGRATE${name.toUpperCase().padEnd(15, "0")}`;

describe("the delivery_queue migration", () => {
  it("keeps the history, moves live deliveries into the queue, and the pending ones are delivered", async () => {
    // The old layout, as a Hookline before engine v2 left it.
    const orm = await openOrm({ url: db.url, poolSize: 2 });
    await orm.getMigrator().up({ to: OLD_LAYOUT });
    await db.query(
      `INSERT INTO endpoints (id, tenant_id, url, secrets)
       VALUES ('ep_migrate', 't', $1, '[{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","expiresAt":null}]'),
              ('ep_ordered', 't', $1, '[{"secret":"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw","expiresAt":null}]')`,
      [`${r.url}/migrated`],
    );
    await db.query("UPDATE endpoints SET ordered = true WHERE id = 'ep_ordered'");
    for (const [name, row] of Object.entries(ROWS) as [Name, (typeof ROWS)[Name]][]) {
      await db.query(`INSERT INTO events (id, tenant_id, event_type, body) VALUES ($1, 't', 'm.e', '{"n":1}')`, [`evt_${name}`]);
      await db.query(
        `INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status, attempt_count, next_attempt_at, locked_by)
         VALUES ($1, $2, 'ep_migrate', 't', 'm.e', $3, $4, ${row.next}, $5)`,
        [id(name), `evt_${name}`, row.status, row.attempts, row.lockedBy],
      );
      for (let n = 1; n <= row.attempts; n++) {
        await db.query(
          `INSERT INTO attempts (id, delivery_id, number, started_at, duration_ms, response_status)
           VALUES ($1, $2, $3, now() - interval '1 minute', 5, 500)`,
          [`atm_${name}_${n}`, id(name), n],
        );
      }
      await db.query(
        `INSERT INTO delivery_updates (delivery_id, event_id, endpoint_id, tenant_id, event_type, kind, status)
         VALUES ($1, $2, 'ep_migrate', 't', 'm.e', 1, 1)`,
        [id(name), `evt_${name}`],
      );
    }
    // An ordered endpoint's head and the delivery parked behind it.
    await db.query(`INSERT INTO events (id, tenant_id, event_type, body) VALUES ('evt_head', 't', 'm.e', '{}'), ('evt_parked', 't', 'm.e', '{}')`);
    await db.query(
      `INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status, next_attempt_at)
       VALUES ('dlv_01JMIGRATEHEAD00000000000', 'evt_head', 'ep_ordered', 't', 'm.e', 1, now() - interval '1 second'),
              ('dlv_01JMIGRATEPARKED000000000', 'evt_parked', 'ep_ordered', 't', 'm.e', 1, NULL)`,
    );
    const count = async (table: string) => Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`))[0]!.n);
    const before = { deliveries: await count("deliveries"), attempts: await count("attempts"), updates: await count("delivery_updates"), events: await count("events") };

    await orm.getMigrator().up();
    await orm.close(true);

    // Nothing of the history is lost.
    expect({ deliveries: await count("deliveries"), attempts: await count("attempts"), updates: await count("delivery_updates"), events: await count("events") }).toEqual(before);
    const statuses = await db.query<{ id: string; status: number; attempt_count: number }>("SELECT id, status, attempt_count FROM deliveries");
    for (const [name, row] of Object.entries(ROWS) as [Name, (typeof ROWS)[Name]][]) {
      expect(statuses.find((s) => s.id === id(name))).toMatchObject({ status: row.status, attempt_count: row.attempts });
    }
    // The live ones are queued with their lease, due time and attempt count; the ended ones are not.
    const queue = await db.query<{ delivery_id: string; locked_by: string | null; due: boolean | null; parked: boolean; attempt_count: number }>(
      "SELECT delivery_id, locked_by, due_at <= now() AS due, due_at IS NULL AS parked, attempt_count FROM delivery_queue",
    );
    const queued = new Map(queue.map((q) => [q.delivery_id, q]));
    expect([...queued.keys()].sort()).toEqual(
      [id("pending"), id("retrying"), id("lapsed"), id("leased"), id("later"), "dlv_01JMIGRATEHEAD00000000000", "dlv_01JMIGRATEPARKED000000000"].sort(),
    );
    expect(queued.get(id("leased"))).toMatchObject({ locked_by: "other-worker", due: false, attempt_count: 1 });
    expect(queued.get(id("retrying"))).toMatchObject({ locked_by: null, due: true, attempt_count: 2 });
    expect(queued.get("dlv_01JMIGRATEPARKED000000000")).toMatchObject({ parked: true });

    // A Hookline on the migrated database delivers what is due, the ordered endpoint in order.
    const app = await startTestHookline(db.url);
    try {
      const ended = async () =>
        new Map((await db.query<{ id: string; status: number }>("SELECT id, status FROM deliveries")).map((d) => [d.id, d.status]));
      await expect
        .poll(async () => {
          const s = await ended();
          return [id("pending"), id("retrying"), id("lapsed"), "dlv_01JMIGRATEHEAD00000000000", "dlv_01JMIGRATEPARKED000000000"].map((d) => s.get(d));
        }, { timeout: 10_000 })
        .toEqual(Array(5).fill(DeliveryState.Succeeded));
      const s = await ended();
      // The lease of a process that may be alive, and a retry due later, wait; ended ones stay as they were.
      expect([s.get(id("leased")), s.get(id("later")), s.get(id("succeeded")), s.get(id("failed"))]).toEqual([
        DeliveryState.Retrying,
        DeliveryState.Retrying,
        DeliveryState.Succeeded,
        DeliveryState.Failed,
      ]);
      const [retried] = await db.query<{ attempt_count: number }>("SELECT attempt_count FROM deliveries WHERE id = $1", [id("retrying")]);
      expect(retried!.attempt_count).toBe(3);
      // Each delivered exactly once, the parked one after its head.
      const paths = r.requests.filter((q) => q.path === "/migrated");
      expect(paths).toHaveLength(5);
      // webhook-id is the event's id.
      const order = paths.map((q) => q.headers["webhook-id"]);
      expect(new Set(order).size).toBe(5);
      expect(order.indexOf("evt_head")).toBeLessThan(order.indexOf("evt_parked"));
      expect(await count("delivery_queue")).toBe(2);
    } finally {
      await app.stop();
    }
  });
});
