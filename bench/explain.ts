/**
 * `npx tsx bench/explain.ts`: EXPLAIN (ANALYZE, BUFFERS) of the hot
 * statements as the store builds them, on a fresh database with a backlog:
 * the publish (1 and 1,000 events, leased to a scheduler), the claim over
 * the due window, the outcomes of 128 claimed deliveries, and the fan-out of one event to 1,000 endpoints. Each statement is run for real
 * (ANALYZE executes it), through the store's own functions.
 *
 * Options: --backlog N (due deliveries queued first, default 100,000);
 * --generic: the generic plan of each statement (not run), which a prepared
 * statement gets once PostgreSQL finds it no worse than the custom ones.
 */
import { parseArgs } from "node:util";
import pg from "pg";
import type { AttemptOutcome } from "../src/domain/delivery/outcome.js";
import { DeliveryState } from "../src/domain/delivery/state.js";
import { newId } from "../src/domain/ids.js";
import { databaseUrl } from "../src/store/embedded-postgres.js";
import { claimDue } from "../src/store/sql/claim-due.js";
import { insertEvents } from "../src/store/sql/insert-events.js";
import { recordOutcomes } from "../src/store/sql/record-outcomes.js";
import type { Sql } from "../src/store/sql.js";
import { openStore } from "../src/store/store.js";
import { startPostgresServer } from "../test/support/postgres-server.js";
import { ROOM } from "./db-cycle.js";

const { values } = parseArgs({ options: { backlog: { type: "string", default: "100000" }, generic: { type: "boolean", default: false } } });
const backlog = Number(values.backlog);

const event = () => {
  const body = JSON.stringify({ type: "invoice.paid", data: { note: "x".repeat(250) } });
  return { id: newId("event"), tenantId: "t", eventType: "invoice.paid", channels: [], idempotencyKey: null, body, data: body };
};

/** Runs `fn` with its statements explained instead of answered; prints each plan. */
async function explain(title: string, store: { sql: Sql }, fn: (sql: Sql) => Promise<unknown>): Promise<void> {
  const sql: Sql = {
    query: async (text, params) => {
      // A generic plan cannot be run: it is shown, with its estimates.
      const rows = values.generic
        ? await store.sql.query<{ "QUERY PLAN": string }>(`EXPLAIN (GENERIC_PLAN) ${text}`)
        : await store.sql.query<{ "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, BUFFERS) ${text}`, params);
      console.log(`\n=== ${title}\n${rows.map((r) => r["QUERY PLAN"]).join("\n")}`);
      return [] as never;
    },
  };
  await fn(sql).catch(() => {});
}

const server = await startPostgresServer();
try {
  const admin = new pg.Client({ connectionString: server.serverUrl });
  await admin.connect();
  await admin.query("DROP DATABASE IF EXISTS hookline_explain");
  await admin.query("CREATE DATABASE hookline_explain");
  await admin.end();
  const store = await openStore(databaseUrl(server.serverUrl, "hookline_explain"), 4, "hookline-explain");
  await store.sql.query(
    `INSERT INTO endpoints (id, tenant_id, url, secrets) VALUES ($1, 't', 'http://127.0.0.1:9/hook', '[{"secret":"whsec_x","expiresAt":null}]')`,
    [newId("endpoint")],
  );
  for (let done = 0; done < backlog; done += 1_000) {
    await insertEvents(store.sql, Array.from({ length: Math.min(1_000, backlog - done) }, event), 86_400_000);
  }
  await store.sql.query("VACUUM ANALYZE");
  const lease = { ...ROOM, limit: 1_000 };
  await explain("publish, 1 event, leased", store, (sql) => insertEvents(sql, [event()], 86_400_000, lease));
  await explain("publish, 1,000 events, leased", store, (sql) => insertEvents(sql, Array.from({ length: 1_000 }, event), 86_400_000, lease));
  await explain("claim, window of 512, 256 rows", store, (sql) => claimDue(sql, { ...ROOM, limit: 256, lookahead: 512 }));
  // The outcomes of 128 claimed deliveries, each a success at the first attempt.
  const claimed = await claimDue(store.sql, { ...ROOM, limit: 128, lookahead: 256 });
  const outcomes: AttemptOutcome[] = claimed.map((d) => ({
    attemptId: newId("attempt"),
    deliveryId: d.id,
    endpointId: d.endpointId,
    attemptNumber: d.attemptNumber,
    startedAt: new Date(),
    durationMs: 1,
    responseStatus: 200,
    errorClass: "",
    error: "",
    responseBody: "ok",
    responseHeaders: { "content-type": "text/plain" },
    status: DeliveryState.Succeeded,
    nextAttemptAt: null,
    success: true,
    gone: false,
  }));
  const rules = { circuitFailureThreshold: 5, circuitCooldownMs: 30_000, circuitMaxCooldownMs: 600_000, disableAfterMs: 5 * 86_400_000 };
  await explain(`outcomes of ${outcomes.length} claimed deliveries, all succeeded`, store, (sql) => recordOutcomes(sql, ROOM.workerId, outcomes, rules));
  // The outcomes of 128 more: half of them failed and are retried later, half succeeded.
  const again = await claimDue(store.sql, { ...ROOM, limit: 128, lookahead: 256 });
  const retried = again.map((d) => ({ ...outcomes[0]!, attemptId: newId("attempt"), deliveryId: d.id, endpointId: d.endpointId })).map((o, i) =>
    i % 2 === 0 ? o : { ...o, responseStatus: 500, errorClass: "http", error: "HTTP 500", success: false, status: DeliveryState.Retrying, nextAttemptAt: new Date(Date.now() + 60_000) },
  );
  await explain(`outcomes of ${outcomes.length} claimed deliveries, half retried`, store, (sql) => recordOutcomes(sql, ROOM.workerId, retried, rules));
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
  await store.close();
} finally {
  await server.stop();
}
