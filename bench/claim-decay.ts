/**
 * `npx tsx bench/claim-decay.ts`: whether a claim costs more as a backlog
 * drains. A one-endpoint backlog is claimed and each claim's deliveries
 * recorded as successes, claim after claim, as the scheduler does (no HTTP),
 * with no vacuum in between; printed per step: the claim's mean time per
 * claimed row and the buffers its due-window scan read (EXPLAIN (ANALYZE,
 * BUFFERS) of one more claim).
 *
 * Options: --backlog N (default 30,000), --claim N (rows per claim, default
 * 96), --lookahead N (the window, default 128), --steps N (default 6),
 * --autovacuum (leave autovacuum on for the queue, as it is in production;
 * off by default), --no-analyze (no VACUUM ANALYZE after the backlog is
 * published: claims start on the statistics autovacuum has or has not made
 * yet, as a live process does), --try SQL (run after the migrations, to measure a
 * setting or layout before writing its migration; repeatable).
 */
import { parseArgs } from "node:util";
import { newId } from "../src/domain/ids.js";
import { claimDue } from "../src/store/sql/claim-due.js";
import { insertEvents } from "../src/store/sql/insert-events.js";
import { recordOutcomes } from "../src/store/sql/record-outcomes.js";
import type { Sql } from "../src/store/sql.js";
import { openStore } from "../src/store/store.js";
import { freshDatabase, startPostgresServer } from "../test/support/postgres-server.js";
import { ROOM, RULES, succeeded } from "./db-cycle.js";

const { values } = parseArgs({
  options: {
    backlog: { type: "string", default: "30000" },
    claim: { type: "string", default: "96" },
    lookahead: { type: "string", default: "128" },
    steps: { type: "string", default: "6" },
    autovacuum: { type: "boolean", default: false },
    "no-analyze": { type: "boolean", default: false },
    try: { type: "string", multiple: true, default: [] },
  },
});
const backlog = Number(values.backlog);
const perClaim = Number(values.claim);
const lookahead = Number(values.lookahead);
const steps = Number(values.steps);
const BODY = JSON.stringify({ type: "bench.event", data: { pad: "x".repeat(240) } });
const event = () => ({ id: newId("event"), tenantId: "t", eventType: "bench.event", channels: [], idempotencyKey: null, body: BODY, data: "{}" });

/** The buffers the claim's scan of the due index read, from EXPLAIN (ANALYZE, BUFFERS) of one claim. */
async function scanBuffers(sql: Sql): Promise<string> {
  let found = "";
  const explaining: Sql = {
    query: async (text, params) => {
      const rows = await sql.query<{ "QUERY PLAN": string }>(`EXPLAIN (ANALYZE, BUFFERS) ${text}`, params);
      const lines = rows.map((r) => r["QUERY PLAN"]);
      const at = lines.findIndex((l) => l.includes("delivery_queue_due_idx"));
      if (process.env.FULL_PLAN) console.log(lines.join("\n"));
      found = at < 0 ? "(no due index scan)" : `${lines[at]!.trim().replace(/\s+\(cost=[^)]*\)/, "")} | ${lines.slice(at + 1, at + 5).find((l) => l.includes("Buffers"))?.trim() ?? ""}`;
      return [] as never;
    },
  };
  await claimDue(explaining, { ...ROOM, limit: perClaim, lookahead }).catch(() => {});
  return found;
}

const server = await startPostgresServer();
try {
  const url = await freshDatabase(server.serverUrl, "hookline_claim_decay");
  const store = await openStore(url, 4, "hookline-claim-decay");
  // No autovacuum on the queue unless asked: what a claim costs between two vacuums.
  if (!values.autovacuum) await store.sql.query("ALTER TABLE delivery_queue SET (autovacuum_enabled = off)");
  for (const statement of values.try) await store.sql.query(statement);
  await store.sql.query(
    `INSERT INTO endpoints (id, tenant_id, url, secrets) VALUES ($1, 't', 'http://127.0.0.1:9/hook', '[{"secret":"whsec_x","expiresAt":null}]')`,
    [newId("endpoint")],
  );
  for (let done = 0; done < backlog; done += 1_000) {
    await insertEvents(store.sql, Array.from({ length: Math.min(1_000, backlog - done) }, event), 86_400_000);
  }
  if (!values["no-analyze"]) await store.sql.query("VACUUM ANALYZE delivery_queue");
  let claimed = 0;
  const stepRows = Math.floor(backlog / steps);
  for (let step = 0; step < steps; step++) {
    console.log(`after ${claimed} claimed: ${await scanBuffers(store.sql)}`);
    let rows = 0;
    let ms = 0;
    while (rows < stepRows) {
      const t0 = performance.now();
      const got = await claimDue(store.sql, { ...ROOM, limit: perClaim, lookahead });
      ms += performance.now() - t0;
      if (got.length === 0) break;
      rows += got.length;
      await recordOutcomes(store.sql, ROOM.workerId, got.map(succeeded), RULES);
    }
    claimed += rows;
    const [dead] = await store.sql.query<{ n_dead_tup: string; autovacuum_count: string }>(
      "SELECT n_dead_tup, autovacuum_count FROM pg_stat_user_tables WHERE relname = 'delivery_queue'",
    );
    console.log(
      `  claims of ${perClaim}: ${((ms * 1000) / Math.max(1, rows)).toFixed(1)} us per claimed row; queue dead tuples ${dead?.n_dead_tup}, autovacuums ${dead?.autovacuum_count}`,
    );
  }
  await store.close();
} finally {
  await server.stop();
}
