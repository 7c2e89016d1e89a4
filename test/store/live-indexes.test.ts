/**
 * The partial indexes over live deliveries and the LIVE_STATES fragment the
 * statements use: the predicate the migrations gave the indexes must be the
 * one PostgreSQL makes of `status IN ${LIVE_STATES}`, and the planner must
 * use the indexes for conditions written with it.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeliveryState } from "../../src/domain/delivery/state.js";
import { LIVE_STATES, sqlStates } from "../../src/store/sql/states.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { insertDeliveries, insertEndpoint } from "../support/rows.js";

let db: TestDatabase;
let client: pg.Client;
let endpointId: string;

beforeAll(async () => {
  // A clone of the template database, which global-setup.ts migrated.
  db = await createTestDatabase();
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  // Mostly ended rows and a few live ones, as in a real table, so the plans are the real ones.
  endpointId = await insertEndpoint(db);
  await insertDeliveries(db, endpointId, 2_000, { status: DeliveryState.Succeeded, nextAttemptAt: "NULL" });
  await insertDeliveries(db, endpointId, 20);
  await db.query("ANALYZE deliveries");
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

/** The partial indexes over live deliveries (see the migrations). */
const LIVE_INDEXES = ["deliveries_due_idx", "deliveries_endpoint_live_idx"];

/** The `WHERE ...` of an index definition. */
const predicate = (indexdef: string) => indexdef.slice(indexdef.indexOf(" WHERE ") + 1);

/** The predicate PostgreSQL writes for an index made `WHERE status IN ${states}`. */
async function predicateOf(states: string): Promise<string> {
  await client.query("BEGIN");
  try {
    await client.query("CREATE TEMP TABLE probe (status smallint, x int) ON COMMIT DROP");
    await client.query(`CREATE INDEX probe_idx ON probe (x) WHERE status IN ${states}`);
    const { rows } = await client.query<{ indexdef: string }>("SELECT indexdef FROM pg_indexes WHERE indexname = 'probe_idx'");
    return predicate(rows[0]!.indexdef);
  } finally {
    await client.query("ROLLBACK");
  }
}

/** The indexes the plan of `query` uses. */
async function indexesUsed(query: string, values: unknown[] = []): Promise<string[]> {
  const { rows } = await client.query<{ "QUERY PLAN": unknown }>(`EXPLAIN (FORMAT JSON) ${query}`, values);
  return [...JSON.stringify(rows[0]!["QUERY PLAN"]).matchAll(/"Index Name":"(\w+)"/g)].map((m) => m[1]!);
}

describe("the partial indexes of live deliveries", () => {
  it("have exactly the predicate of LIVE_STATES", async () => {
    const { rows } = await client.query<{ indexname: string; indexdef: string }>(
      "SELECT indexname, indexdef FROM pg_indexes WHERE indexdef ~ ' WHERE .*\\mstatus\\M' ORDER BY indexname",
    );
    expect(rows.map((r) => r.indexname)).toEqual(LIVE_INDEXES);
    const live = await predicateOf(LIVE_STATES);
    for (const r of rows) expect(predicate(r.indexdef), r.indexname).toBe(live);
    // The comparison tells sets apart: all statuses are another predicate.
    expect(await predicateOf(sqlStates(Object.values(DeliveryState)))).not.toBe(live);
  });

  it("are used by the planner for conditions written with LIVE_STATES, and only for those", async () => {
    const partial = (indexes: string[]) => indexes.filter((i) => LIVE_INDEXES.includes(i));
    const due = `SELECT id FROM deliveries WHERE status IN ${LIVE_STATES} AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT 8`;
    expect(await indexesUsed(due)).toEqual(["deliveries_due_idx"]);
    const behind = (states: string) => `SELECT 1 FROM deliveries p WHERE p.endpoint_id = $1 AND p.status IN ${states} AND p.seq < 100000`;
    expect(partial(await indexesUsed(behind(LIVE_STATES), [endpointId]))).not.toEqual([]);
    // A condition that does not imply their predicate gets neither, so the check above can fail.
    const all = sqlStates(Object.values(DeliveryState));
    expect(partial(await indexesUsed(behind(all), [endpointId]))).toEqual([]);
  });
});
