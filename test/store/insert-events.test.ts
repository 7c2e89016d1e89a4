/**
 * The publish statement against PostgreSQL: which endpoints an event fans
 * out to, idempotency keys within their window (also between concurrent
 * publishes), when new deliveries are due (parked behind an ordered
 * endpoint's live one, held while a circuit is open), the status log's
 * CREATED rows, and all or nothing for a batch.
 */
import pg from "pg";
import { describe, expect, it } from "vitest";
import { DeliveryUpdateKind } from "../../gen/hookline/v1/delivery_pb.js";
import { newId } from "../../src/domain/ids.js";
import { DeliveryState } from "../../src/domain/delivery/state.js";
import type { Sql } from "../../src/store/sql.js";
import { insertEvents as insertWithResult, type NewEvent } from "../../src/store/sql/insert-events.js";
import {
  deliveriesOf,
  insertDeliveries,
  insertEndpoint,
  insertIdempotencyKey,
  readEvent,
  rowCounts,
  statusLogOf,
} from "../support/rows.js";
import { useTestStore } from "../support/store.js";

/** The publish statement with no lease (as in a process without a scheduler), its results per event (leasing: publish-lease.test.ts). */
const insertEvents = async (...args: Parameters<typeof insertWithResult>) => (await insertWithResult(...args)).events;

// Room for publishes at once (see the concurrency tests).
const { db, sql } = useTestStore(4);

const DAY_MS = 86_400_000;

/** An event of `tenantId` of type `eventType`; `fields` change the rest. */
function event(tenantId: string, eventType = "order.created", fields: Partial<NewEvent> = {}): NewEvent {
  const data = fields.data ?? '{"n":1}';
  return { id: newId("event"), tenantId, eventType, channels: [], idempotencyKey: null, body: `{"data":${data}}`, data, ...fields };
}

describe("fan-out", () => {
  it("gives each event one delivery per endpoint of its tenant whose event types match, exactly or by prefix", async () => {
    const all = await insertEndpoint(db, { tenantId: "a" });
    const exact = await insertEndpoint(db, { tenantId: "a", eventTypes: ["order.created"] });
    const prefix = await insertEndpoint(db, { tenantId: "a", eventTypes: ["invoice.paid", "order.*"] });
    const other = await insertEndpoint(db, { tenantId: "a", eventTypes: ["invoice.*", "order"] });
    const otherTenant = await insertEndpoint(db, { tenantId: "b" });
    const [created, shipped] = await insertEvents(sql, [event("a", "order.created"), event("a", "order.shipped")], DAY_MS);
    expect(created).toMatchObject({ deliveryCount: 3, duplicate: false });
    expect(shipped).toMatchObject({ deliveryCount: 2, duplicate: false });
    expect((await deliveriesOf(db, all)).map((d) => d.eventId)).toEqual([created!.eventId, shipped!.eventId]);
    expect((await deliveriesOf(db, exact)).map((d) => d.eventId)).toEqual([created!.eventId]);
    expect((await deliveriesOf(db, prefix)).map((d) => d.eventId)).toEqual([created!.eventId, shipped!.eventId]);
    expect(await deliveriesOf(db, other)).toEqual([]);
    expect(await deliveriesOf(db, otherTenant)).toEqual([]);
  });

  it("matches channels when both the endpoint and the event name some, and every endpoint when the event names none", async () => {
    const eu = await insertEndpoint(db, { tenantId: "c", channels: ["eu"] });
    const us = await insertEndpoint(db, { tenantId: "c", channels: ["us", "ca"] });
    const any = await insertEndpoint(db, { tenantId: "c" });
    const [toEu, toCa, toAll] = await insertEvents(
      sql,
      [event("c", "t.e", { channels: ["eu"] }), event("c", "t.e", { channels: ["ca", "mx"] }), event("c", "t.e")],
      DAY_MS,
    );
    expect((await deliveriesOf(db, eu)).map((d) => d.eventId)).toEqual([toEu!.eventId, toAll!.eventId]);
    expect((await deliveriesOf(db, us)).map((d) => d.eventId)).toEqual([toCa!.eventId, toAll!.eventId]);
    expect((await deliveriesOf(db, any)).map((d) => d.eventId)).toEqual([toEu!.eventId, toCa!.eventId, toAll!.eventId]);
  });

  it("leaves out disabled and deleted endpoints, and stores an event with no endpoint", async () => {
    await insertEndpoint(db, { tenantId: "d", disabled: true, disabledReason: "410 Gone" });
    await insertEndpoint(db, { tenantId: "d", deleted: true });
    const [result] = await insertEvents(sql, [event("d", "t.e", { channels: ["x"] })], DAY_MS);
    expect(result).toEqual({ eventId: expect.any(String), deliveryCount: 0, duplicate: false, deliveryIds: [] });
    expect(await readEvent(db, result!.eventId)).toMatchObject({ tenantId: "d", eventType: "t.e", channels: ["x"], body: '{"data":{"n":1}}' });
    expect((await rowCounts(db)).deliveries).toBe(0);
  });

  it("returns each event's delivery ids, due now, pending, with the event's time at the front of the id", async () => {
    const a = await insertEndpoint(db, { tenantId: "e" });
    const b = await insertEndpoint(db, { tenantId: "e" });
    const [result] = await insertEvents(sql, [event("e")], DAY_MS);
    const stored = [...(await deliveriesOf(db, a)), ...(await deliveriesOf(db, b))];
    expect(result!.deliveryIds.sort()).toEqual(stored.map((d) => d.id).sort());
    for (const d of stored) {
      expect(d).toMatchObject({ status: DeliveryState.Pending, attemptCount: 0, lockedBy: null, eventId: result!.eventId });
      expect(d.dueInS).toBeLessThanOrEqual(0);
      // "dlv_" + the event's ULID time, so deliveries sort by publish time.
      expect(d.id.slice(4, 14)).toBe(result!.eventId.slice(4, 14));
    }
  });

  it("logs each new delivery as CREATED, pending, with its event, endpoint, tenant and type", async () => {
    const ep = await insertEndpoint(db, { tenantId: "f" });
    const [result] = await insertEvents(sql, [event("f", "user.signed_up")], DAY_MS);
    expect(await statusLogOf(db, result!.deliveryIds)).toEqual([
      expect.objectContaining({
        deliveryId: result!.deliveryIds[0],
        eventId: result!.eventId,
        endpointId: ep,
        tenantId: "f",
        eventType: "user.signed_up",
        kind: DeliveryUpdateKind.CREATED,
        status: DeliveryState.Pending,
      }),
    ]);
  });
});

describe("due times", () => {
  it("parks an ordered endpoint's deliveries behind its first live one, in publish order, and not an unordered endpoint's", async () => {
    const ordered = await insertEndpoint(db, { tenantId: "o", ordered: true });
    const unordered = await insertEndpoint(db, { tenantId: "o" });
    await insertEvents(sql, [event("o"), event("o"), event("o")], DAY_MS);
    const queue = await deliveriesOf(db, ordered);
    expect(queue.map((d) => d.dueInS === null)).toEqual([false, true, true]);
    expect((await deliveriesOf(db, unordered)).every((d) => d.dueInS !== null && d.dueInS <= 0)).toBe(true);
    // A later publish waits behind the live head too.
    await insertEvents(sql, [event("o")], DAY_MS);
    expect((await deliveriesOf(db, ordered)).map((d) => d.dueInS === null)).toEqual([false, true, true, true]);
  });

  it("makes an ordered endpoint's delivery due at once when nothing of it is live", async () => {
    const ordered = await insertEndpoint(db, { tenantId: "o2", ordered: true });
    await insertDeliveries(db, ordered, 1, { status: DeliveryState.Succeeded, nextAttemptAt: "NULL" });
    await insertEvents(sql, [event("o2")], DAY_MS);
    const [, fresh] = await deliveriesOf(db, ordered);
    expect(fresh!.dueInS).toBeLessThanOrEqual(0);
  });

  it("makes a blocked endpoint's new deliveries due when its circuit's cool-down or its probe's lease ends, whichever is later", async () => {
    const open = await insertEndpoint(db, { tenantId: "h", circuitOpenUntil: "now() + interval '60 seconds'" });
    const probing = await insertEndpoint(db, {
      tenantId: "h",
      circuitOpenUntil: "now() - interval '1 second'",
      circuitProbeUntil: "now() + interval '30 seconds'",
    });
    await insertEvents(sql, [event("h")], DAY_MS);
    expect((await deliveriesOf(db, open))[0]!.dueInS).toBe(60);
    expect((await deliveriesOf(db, probing))[0]!.dueInS).toBe(30);
  });
});

describe("idempotency", () => {
  it("stores the first event of a key and answers later ones, in the batch and after it, with the first's id", async () => {
    await insertEndpoint(db, { tenantId: "i" });
    const first = event("i", "t.e", { idempotencyKey: "k1" });
    const [stored, again] = await insertEvents(sql, [first, event("i", "t.e", { idempotencyKey: "k1" })], DAY_MS);
    expect(stored).toMatchObject({ eventId: first.id, deliveryCount: 1, duplicate: false });
    expect(again).toEqual({ eventId: first.id, deliveryCount: 0, duplicate: true, deliveryIds: [] });
    const [later] = await insertEvents(sql, [event("i", "t.e", { idempotencyKey: "k1" })], DAY_MS);
    expect(later).toEqual({ eventId: first.id, deliveryCount: 0, duplicate: true, deliveryIds: [] });
    expect(await rowCounts(db)).toMatchObject({ events: 1, deliveries: 1, idempotencyKeys: 1 });
  });

  it("keeps keys per tenant", async () => {
    const [a, b] = await insertEvents(
      sql,
      [event("i1", "t.e", { idempotencyKey: "same" }), event("i2", "t.e", { idempotencyKey: "same" })],
      DAY_MS,
    );
    expect([a!.duplicate, b!.duplicate]).toEqual([false, false]);
    expect(a!.eventId).not.toBe(b!.eventId);
  });

  it("lets a key be used again once its window has passed, for the new event", async () => {
    await insertEndpoint(db, { tenantId: "w" });
    const old = event("w");
    await insertEvents(sql, [old], DAY_MS);
    await insertIdempotencyKey(db, "w", "k", old.id, "now() - interval '1 second'");
    const fresh = event("w", "t.e", { idempotencyKey: "k" });
    const [result] = await insertEvents(sql, [fresh], DAY_MS);
    expect(result).toMatchObject({ eventId: fresh.id, deliveryCount: 1, duplicate: false });
    // Taken for the new event's window now.
    const [again] = await insertEvents(sql, [event("w", "t.e", { idempotencyKey: "k" })], DAY_MS);
    expect(again).toMatchObject({ eventId: fresh.id, duplicate: true });
  });

  describe("between concurrent publishes", () => {
    /** An Sql on a connection of its own, inside a transaction left open until `end` is called. */
    async function inOpenTransaction(): Promise<{ sql: Sql; pid: number; end(commit: boolean): Promise<void> }> {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      await client.query("BEGIN");
      const [row] = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows;
      return {
        sql: { query: async <R extends object>(text: string, values?: unknown[]) => (await client.query(text, values)).rows as R[] },
        pid: row!.pid,
        async end(commit) {
          await client.query(commit ? "COMMIT" : "ROLLBACK");
          await client.end();
        },
      };
    }

    /** Resolves once some backend waits for a lock that backend `holder` holds. */
    async function someoneWaitsFor(holder: number): Promise<void> {
      await expect
        .poll(async () => (await db.query("SELECT 1 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))", [holder])).length, {
          timeout: 10_000,
          interval: 10,
        })
        .toBe(1);
    }

    it("answers a publish that waited for another with the same key with the other's event once it commits", async () => {
      await insertEndpoint(db, { tenantId: "r" });
      const holder = await inOpenTransaction();
      const winner = event("r", "t.e", { idempotencyKey: "race" });
      const [won] = await insertEvents(holder.sql, [winner], DAY_MS);
      expect(won!.duplicate).toBe(false);
      const loser = insertEvents(sql, [event("r", "t.e", { idempotencyKey: "race" })], DAY_MS);
      await someoneWaitsFor(holder.pid);
      await holder.end(true);
      expect(await loser).toEqual([{ eventId: winner.id, deliveryCount: 0, duplicate: true, deliveryIds: [] }]);
      expect(await rowCounts(db)).toMatchObject({ events: 1, deliveries: 1 });
    });

    it("stores a publish that waited for another with the same key if that one rolls back", async () => {
      await insertEndpoint(db, { tenantId: "r2" });
      const holder = await inOpenTransaction();
      await insertEvents(holder.sql, [event("r2", "t.e", { idempotencyKey: "race" })], DAY_MS);
      const second = event("r2", "t.e", { idempotencyKey: "race" });
      const waiting = insertEvents(sql, [second], DAY_MS);
      await someoneWaitsFor(holder.pid);
      await holder.end(false);
      expect(await waiting).toEqual([{ eventId: second.id, deliveryCount: 1, duplicate: false, deliveryIds: [expect.any(String)] }]);
    });

    it("stores exactly one of many publishes of one key made at once", async () => {
      await insertEndpoint(db, { tenantId: "many" });
      const events = Array.from({ length: 8 }, () => event("many", "t.e", { idempotencyKey: "k" }));
      const results = (await Promise.all(events.map((e) => insertEvents(sql, [e], DAY_MS)))).flat();
      expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
      expect(new Set(results.map((r) => r.eventId)).size).toBe(1);
      expect(await rowCounts(db)).toMatchObject({ events: 1, deliveries: 1 });
    });
  });
});

describe("all or nothing", () => {
  it("stores nothing of a batch with one event PostgreSQL refuses: no event, delivery, key or log row", async () => {
    await insertEndpoint(db, { tenantId: "bad" });
    const batch = [
      event("bad", "t.e", { idempotencyKey: "good" }),
      // PostgreSQL text cannot hold a NUL character (22021).
      event("bad", "t.e", { data: '"\u0000"' }),
      event("bad"),
    ];
    await expect(insertEvents(sql, batch, DAY_MS)).rejects.toMatchObject({ code: "22021" });
    expect(await rowCounts(db)).toMatchObject({ events: 0, deliveries: 0, statusLog: 0, idempotencyKeys: 0 });
    // The good ones alone are stored.
    const results = await insertEvents(sql, [batch[0]!, batch[2]!], DAY_MS);
    expect(results.map((r) => r.deliveryCount)).toEqual([1, 1]);
  });
});
