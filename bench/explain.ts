/**
 * `npx tsx bench/explain.ts`: EXPLAIN (ANALYZE, BUFFERS) of the hot
 * statements as the store builds them, on a fresh database with a backlog:
 * the publish (1 and 1,000 events, leased to a scheduler), the claim over
 * the due window, the outcomes of 128 claimed deliveries, and the fan-out of one event to 1,000 endpoints. Each statement is run for real
 * (ANALYZE executes it), through the store's own functions.
 *
 * Options: --backlog N (due deliveries queued first, default 100,000);
 * --generic: each statement prepared and run on its generic plan, which a
 * prepared statement gets once PostgreSQL finds it no worse than the custom
 * ones. --history N: deliveries delivered first (claimed, a success
 * recorded), so the status log holds their attempts (default 10,000).
 */
import { parseArgs } from "node:util";
import pg from "pg";
import { DeliveryState } from "../src/domain/delivery/state.js";
import { newId } from "../src/domain/ids.js";
import { claimDue } from "../src/store/sql/claim-due.js";
import { insertEvents } from "../src/store/sql/insert-events.js";
import { recordOutcomes } from "../src/store/sql/record-outcomes.js";
import type { Sql } from "../src/store/sql.js";
import { openStore } from "../src/store/store.js";
import { freshDatabase, startPostgresServer } from "../test/support/postgres-server.js";
import { ROOM, RULES, succeeded } from "./db-cycle.js";

const { values } = parseArgs({
  options: { backlog: { type: "string", default: "100000" }, generic: { type: "boolean", default: false }, history: { type: "string", default: "10000" } },
});
const backlog = Number(values.backlog);

const event = () => {
  const body = JSON.stringify({ type: "invoice.paid", data: { note: "x".repeat(250) } });
  return { id: newId("event"), tenantId: "t", eventType: "invoice.paid", channels: [], idempotencyKey: null, body, data: body };
};

let generic: pg.Client | undefined;
let prepared = 0;

/**
 * Runs `fn` with its statements explained instead of answered; prints each
 * plan. With --generic, each is prepared and run on its generic plan.
 */
async function explain(title: string, store: { sql: Sql }, fn: (sql: Sql) => Promise<unknown>): Promise<void> {
  const sql: Sql = {
    query: async (text, params) => {
      let rows: { "QUERY PLAN": string }[];
      if (generic) {
        // The plan a prepared statement runs on after its fifth call, when
        // PostgreSQL finds it no worse than the custom ones: forced here,
        // and explained by auto_explain (EXPLAIN takes no parameters).
        const notices: string[] = [];
        const onNotice = (n: { message?: string }) => notices.push(n.message ?? "");
        generic.on("notice", onNotice);
        await generic.query({ name: `explained_${++prepared}`, text, values: params });
        generic.off("notice", onNotice);
        rows = notices.flatMap((n) => n.split("\n")).map((line) => ({ "QUERY PLAN": line }));
      } else {
        rows = await store.sql.query<{ "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, BUFFERS) ${text}`, params);
      }
      console.log(`\n=== ${title}\n${rows.map((r) => r["QUERY PLAN"]).join("\n")}`);
      return [] as never;
    },
  };
  // The store's function may then fail on the rows it did not get back (a
  // publish checks that its events were stored): only an error before any
  // plan is worth showing.
  let explained = 0;
  const counted: Sql = {
    query: (text, params) => {
      explained++;
      return sql.query(text, params);
    },
  };
  await fn(counted).catch((err: unknown) => {
    if (explained === 0) console.log(`\n=== ${title}: ${String(err)}`);
  });
}

const server = await startPostgresServer();
try {
  const url = await freshDatabase(server.serverUrl, "hookline_explain");
  const store = await openStore(url, 4, "hookline-explain");
  if (values.generic) {
    generic = new pg.Client({ connectionString: url });
    await generic.connect();
    for (const setting of [
      "LOAD 'auto_explain'",
      "SET plan_cache_mode = force_generic_plan",
      "SET auto_explain.log_min_duration = 0",
      "SET auto_explain.log_analyze = on",
      "SET auto_explain.log_buffers = on",
      "SET auto_explain.log_level = notice",
    ]) {
      await generic.query(setting);
    }
  }
  await store.sql.query(
    `INSERT INTO endpoints (id, tenant_id, url, secrets) VALUES ($1, 't', 'http://127.0.0.1:9/hook', '[{"secret":"whsec_x","expiresAt":null}]')`,
    [newId("endpoint")],
  );
  for (let done = 0; done < backlog; done += 1_000) {
    await insertEvents(store.sql, Array.from({ length: Math.min(1_000, backlog - done) }, event), 86_400_000);
  }
  // History: deliveries delivered, their attempts in the status log.
  for (let done = 0; done < Number(values.history); done += 1_000) {
    const claimed = await claimDue(store.sql, { ...ROOM, limit: 1_000, lookahead: 1_000 });
    await recordOutcomes(store.sql, ROOM.workerId, claimed.map(succeeded), RULES);
  }
  await store.sql.query("VACUUM ANALYZE");
  const lease = { ...ROOM, limit: 1_000 };
  await explain("publish, 1 event, leased", store, (sql) => insertEvents(sql, [event()], 86_400_000, lease));
  await explain("publish, 1,000 events, leased", store, (sql) => insertEvents(sql, Array.from({ length: 1_000 }, event), 86_400_000, lease));
  await explain("claim, window of 512, 256 rows", store, (sql) => claimDue(sql, { ...ROOM, limit: 256, lookahead: 512 }));
  // The outcomes of claimed deliveries, each a success at the first attempt: a backlog's batch and a small one.
  for (const n of [128, 16]) {
    const outcomes = (await claimDue(store.sql, { ...ROOM, limit: n, lookahead: 2 * n })).map(succeeded);
    await explain(`outcomes of ${outcomes.length} claimed deliveries, all succeeded`, store, (sql) => recordOutcomes(sql, ROOM.workerId, outcomes, RULES));
  }
  // The outcomes of 128 more: half of them failed and are retried later, half succeeded.
  const retried = (await claimDue(store.sql, { ...ROOM, limit: 128, lookahead: 256 })).map(succeeded).map((o, i) =>
    i % 2 === 0 ? o : { ...o, responseStatus: 500, errorClass: "http", error: "HTTP 500", success: false, status: DeliveryState.Retrying, nextAttemptAt: new Date(Date.now() + 60_000) },
  );
  await explain(`outcomes of ${retried.length} claimed deliveries, half retried`, store, (sql) => recordOutcomes(sql, ROOM.workerId, retried, RULES));
  // Fan-out: one event of a tenant with 1,000 endpoints, 256 of its deliveries leased.
  const fanout = Array.from({ length: 1_000 }, () => newId("endpoint"));
  await store.sql.query(
    `INSERT INTO endpoints (id, tenant_id, url, secrets)
     SELECT id, 'f', 'http://127.0.0.1:9/hook', '[{"secret":"whsec_x","expiresAt":null}]' FROM unnest($1::text[]) AS id`,
    [fanout],
  );
  await store.sql.query("ANALYZE endpoints");
  const fanEvent = () => ({ ...event(), tenantId: "f" });
  await explain("publish, 1 event to 1,000 endpoints, 256 leased", store, (sql) =>
    insertEvents(sql, [fanEvent()], 86_400_000, { ...ROOM, newTenant: { free: 256, newEndpointFree: 1 }, limit: 256 }),
  );
  await generic?.end();
  await store.close();
} finally {
  await server.stop();
}
