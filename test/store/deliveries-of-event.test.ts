/**
 * An event's deliveries are found by their ids' range, and those made before
 * ids were derived from the event by the partial legacy index: every one of
 * them, no other, and with no scan of the whole history.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newId } from "../../src/domain/ids.js";
import { ofEvent } from "../../src/store/sql/deliveries-of-event.js";
import { insertEvents } from "../../src/store/sql/insert-events.js";
import type { Sql } from "../../src/store/sql.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { insertEndpoint } from "../support/rows.js";

let db: TestDatabase;
const sql: Sql = { query: (text, values) => db.query(text, values) as never };

beforeAll(async () => {
  db = await createTestDatabase();
});

afterAll(async () => {
  await db?.drop();
});

const OF_EVENT = `SELECT id FROM deliveries d WHERE ${ofEvent("d", "$1::text")} ORDER BY id`;

describe("ofEvent", () => {
  it("finds each event's deliveries, published together or made with the old ids, and only them", async () => {
    const endpoints = [await insertEndpoint(db), await insertEndpoint(db), await insertEndpoint(db)];
    // Events published in one statement share their millisecond, so their deliveries share a range.
    const events = ["a", "b", "c"].map(() => ({ id: newId("event"), tenantId: "t", eventType: "e", channels: [], idempotencyKey: null, body: "{}", data: "{}" }));
    await insertEvents(sql, events, 60_000);
    // A delivery made before ids were derived from the event: its own ULID, of another time.
    await db.query(
      `INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status)
       VALUES ('dlv_01ARZ3NDEKTSV4RRFFQ69G5FAV', $1, $2, 't', 'e', 3)`,
      [events[1]!.id, endpoints[0]],
    );
    const all = await db.query<{ id: string; event_id: string }>("SELECT id, event_id FROM deliveries ORDER BY id");
    expect(all).toHaveLength(10);
    for (const e of events) {
      const found = await db.query<{ id: string }>(OF_EVENT, [e.id]);
      expect(found.map((f) => f.id)).toEqual(all.filter((d) => d.event_id === e.id).map((d) => d.id));
    }
    expect(await db.query(OF_EVENT, [events[1]!.id])).toContainEqual({ id: "dlv_01ARZ3NDEKTSV4RRFFQ69G5FAV" });
  });

  it("reads the primary key and the legacy index, never the whole table", async () => {
    // On one connection: the setting holds for the EXPLAIN (with 10 rows a
    // sequential scan would be cheapest, and this asks what else it can do).
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query("SET enable_seqscan = off");
      const { rows } = await client.query<{ "QUERY PLAN": string }>(`EXPLAIN ${OF_EVENT}`, [newId("event")]);
      const plan = rows.map((r) => r["QUERY PLAN"]).join("\n");
      expect(plan).toContain("deliveries_pkey");
      expect(plan).toContain("deliveries_event_legacy_idx");
      expect(plan).not.toContain("Seq Scan");
    } finally {
      await client.end();
    }
  });
});
