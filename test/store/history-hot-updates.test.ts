/**
 * The history row of a delivery (`deliveries`) is updated by every outcome;
 * engine v2 keeps its indexes on columns that never change (no status in any
 * index or index predicate: the live queue is its own table), so those
 * updates are HOT: no index entries, a fraction of the WAL. These tests fail
 * if an index or a statement breaks that.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeliveryState } from "../../src/domain/delivery/state.js";
import { newId } from "../../src/domain/ids.js";
import { recordOutcomes } from "../../src/store/sql/record-outcomes.js";
import type { Sql } from "../../src/store/sql.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { insertDeliveries, insertEndpoint } from "../support/rows.js";

let db: TestDatabase;
let client: pg.Client;

beforeAll(async () => {
  // A clone of the template database, which global-setup.ts migrated.
  db = await createTestDatabase();
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

/** The columns an outcome, a requeue or a failure writes on the history row. */
const CHANGING = ["status", "attempt_count", "last_response_status", "last_error", "updated_at"];

describe("the history row of a delivery", () => {
  it("has indexes, and index predicates, on columns that never change", async () => {
    const { rows } = await client.query<{ indexname: string; indexdef: string }>(
      "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'deliveries'",
    );
    expect(rows.length).toBeGreaterThan(1);
    for (const r of rows) {
      for (const column of CHANGING) expect(r.indexdef, r.indexname).not.toMatch(new RegExp(`\\b${column}\\b`));
    }
  });

  it("is updated HOT by the outcomes of attempts, retried and ended alike", async () => {
    const endpointId = await insertEndpoint(db);
    const leaseUntil = new Date(Date.now() + 60_000);
    const ids = await insertDeliveries(db, endpointId, 40, { lockedBy: "w1", nextAttemptAt: `'${leaseUntil.toISOString()}'::timestamptz` });
    // The outcome statement on this test's own connection, so that its
    // statistics can be flushed at once (pg_stat_force_next_flush).
    const sql: Sql = { query: async (text, values) => (await client.query(text, values)).rows as never };
    const stats = async () => {
      await client.query("SELECT pg_stat_clear_snapshot()");
      const { rows } = await client.query<{ upd: string; hot: string }>(
        "SELECT n_tup_upd AS upd, n_tup_hot_upd AS hot FROM pg_stat_user_tables WHERE relname = 'deliveries'",
      );
      return { upd: Number(rows[0]!.upd), hot: Number(rows[0]!.hot) };
    };
    const before = await stats();
    await recordOutcomes(
      sql,
      "w1",
      ids.map((id, i) => ({
        attemptId: newId("attempt"),
        deliveryId: id,
        endpointId,
        attemptNumber: 1,
        startedAt: new Date(),
        durationMs: 3,
        responseStatus: i % 2 === 0 ? 200 : 500,
        errorClass: "",
        error: i % 2 === 0 ? "" : "HTTP 500",
        responseBody: "",
        responseHeaders: null,
        status: i % 2 === 0 ? DeliveryState.Succeeded : DeliveryState.Retrying,
        nextAttemptAt: i % 2 === 0 ? null : new Date(Date.now() + 60_000),
        success: i % 2 === 0,
        gone: false,
        leaseUntil,
      })),
      { circuitFailureThreshold: 1_000, circuitCooldownMs: 1_000, circuitMaxCooldownMs: 1_000, disableAfterMs: 86_400_000 },
    );
    await client.query("SELECT pg_stat_force_next_flush()");
    const after = await stats();
    expect(after.upd - before.upd).toBe(40);
    expect(after.hot - before.hot).toBe(40);
  });
});
