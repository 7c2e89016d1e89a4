/**
 * `npm run bench:db-cost`: the database side of one delivered event, with no
 * HTTP and no RPC, driving the store's own operations the way the scheduler
 * does (publish, take the new deliveries, write their successful outcomes in
 * batches). It prints what PostgreSQL wrote per event: WAL bytes, rows
 * inserted, updated (HOT and not) and deleted per table, and the hot-path
 * statements per event.
 *
 * WAL bytes and row counts do not depend on how busy the machine is, so
 * this is the quick, steady check of a store layout change; `npm run bench`
 * measures the whole path.
 *
 * Options: --events N (default 20,000), --batch N (events per publish,
 * default 1, as unary publishes; group commit makes a few per statement at
 * high rates), --outcomes N (outcomes per write, default 64), --no-lease
 * (claim new deliveries after publishing instead of leasing them in the
 * publish statement, as a process without a scheduler leaves them),
 * --try SQL (run after the migrations, to measure a layout change before
 * writing its migration; repeatable).
 */
import { parseArgs } from "node:util";
import pg from "pg";
import { newId } from "../src/domain/ids.js";
import { openStore, type Store } from "../src/store/store.js";
import { freshDatabase, startPostgresServer } from "../test/support/postgres-server.js";
import { runDeliveryCycle } from "./db-cycle.js";

const { values } = parseArgs({
  options: {
    events: { type: "string", default: "20000" },
    batch: { type: "string", default: "1" },
    outcomes: { type: "string", default: "64" },
    "no-lease": { type: "boolean", default: false },
    try: { type: "string", multiple: true, default: [] },
  },
});
const events = Number(values.events);
const batch = Number(values.batch);
const outcomesPerWrite = Number(values.outcomes);
const lease = !values["no-lease"];

interface TableStats {
  relname: string;
  ins: number;
  upd: number;
  hot: number;
  del: number;
}

async function tableStats(c: pg.Client): Promise<Map<string, TableStats>> {
  await c.query("SELECT pg_stat_clear_snapshot()");
  const { rows } = await c.query<TableStats>(
    `SELECT relname, n_tup_ins::float8 AS ins, n_tup_upd::float8 AS upd, n_tup_hot_upd::float8 AS hot, n_tup_del::float8 AS del
     FROM pg_stat_user_tables`,
  );
  return new Map(rows.map((r) => [r.relname, r]));
}

/** Table stats once every backend has flushed them: two reads 1.5 s apart agree. */
async function settledStats(c: pg.Client): Promise<Map<string, TableStats>> {
  let last = JSON.stringify([...(await tableStats(c))]);
  for (;;) {
    await new Promise((r) => setTimeout(r, 1_500));
    const now = await tableStats(c);
    const text = JSON.stringify([...now]);
    if (text === last) return now;
    last = text;
  }
}

/** The store with its hot-path statements counted (the ORM's are not on this path). */
function countStatements(store: Store): { store: Store; calls: number; byText: Map<string, number> } {
  const counted = { store, calls: 0, byText: new Map<string, number>() };
  counted.store = {
    ...store,
    sql: {
      query(text, values, prepare) {
        counted.calls++;
        counted.byText.set(text, (counted.byText.get(text) ?? 0) + 1);
        return store.sql.query(text, values, prepare);
      },
    },
  };
  return counted;
}

const server = await startPostgresServer();
try {
  const url = await freshDatabase(server.serverUrl, "hookline_db_cost");
  // Each run on its own pool, closed after it: a backend flushes its table
  // statistics when it exits (an idle one only after up to 10 s).
  const warm = await openStore(url, 4, "hookline-db-cost");
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  for (const statement of values.try) await c.query(statement);
  const endpointId = newId("endpoint");
  await c.query(
    `INSERT INTO endpoints (id, tenant_id, url, secrets) VALUES ($1, 't', 'http://127.0.0.1:9/hook', '[{"secret":"whsec_x","expiresAt":null}]')`,
    [endpointId],
  );
  // Warm up (plans, caches, the first pages), then measure.
  await runDeliveryCycle(warm, { events: 500, batch, outcomesPerWrite, lease });
  await warm.close();
  await c.query("CHECKPOINT");
  const before = await settledStats(c);
  const [{ lsn: lsnBefore }] = (await c.query<{ lsn: string }>("SELECT pg_current_wal_lsn() AS lsn")).rows as [{ lsn: string }];
  const started = performance.now();
  const store = await openStore(url, 4, "hookline-db-cost");
  const counted = countStatements(store);
  const lsn = async () => Number((await c.query<{ b: string }>("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::text AS b")).rows[0]!.b);
  const timing = await runDeliveryCycle(counted.store, { events, batch, outcomesPerWrite, lease, meter: lsn });
  await store.close();
  const seconds = (performance.now() - started) / 1000;
  const [{ bytes }] = (await c.query<{ bytes: number }>("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1)::float8 AS bytes", [lsnBefore])).rows as [
    { bytes: number },
  ];
  const lsnAfter = (await c.query<{ lsn: string }>("SELECT pg_current_wal_lsn() AS lsn")).rows[0]!.lsn;
  const after = await settledStats(c);
  const per = (n: number) => (n / events).toFixed(2);
  console.log(`${events.toLocaleString("en")} events, ${batch} per publish, ${outcomesPerWrite} outcomes per write, ${lease ? "leased at publish" : "claimed after publish"}, ${seconds.toFixed(1)} s`);
  console.log(`WAL bytes per delivered event: ${Math.round(bytes / events)}`);
  console.log(`phases, ms per event: ${Object.entries(timing.ms).map(([k, v]) => `${k} ${(v / events).toFixed(3)}`).join(", ")}`);
  console.log(`phases, WAL bytes per event: ${Object.entries(timing.metered).map(([k, v]) => `${k} ${Math.round(v / events)}`).join(", ")}`);
  console.log("rows per event (inserted / updated, of which HOT / deleted):");
  let total = { ins: 0, upd: 0, hot: 0, del: 0 };
  for (const [name, a] of after) {
    const b = before.get(name) ?? { ins: 0, upd: 0, hot: 0, del: 0 };
    const d = { ins: a.ins - b.ins, upd: a.upd - b.upd, hot: a.hot - b.hot, del: a.del - b.del };
    if (d.ins + d.upd + d.del === 0) continue;
    total = { ins: total.ins + d.ins, upd: total.upd + d.upd, hot: total.hot + d.hot, del: total.del + d.del };
    console.log(`  ${name.padEnd(20)} ${per(d.ins)} / ${per(d.upd)}, ${per(d.hot)} HOT / ${per(d.del)}`);
  }
  console.log(`  ${"total".padEnd(20)} ${per(total.ins)} / ${per(total.upd)}, ${per(total.hot)} HOT / ${per(total.del)}`);
  // Where the WAL went: by relation (a record touching several blocks is
  // counted once per block, its main data with the first), and full-page images.
  await c.query("CREATE EXTENSION IF NOT EXISTS pg_walinspect");
  const byRelation = (
    await c.query<{ rel: string; n: number; bytes: number; fpi: number }>(
      `SELECT coalesce(cl.relname, b.relfilenode::text) AS rel, count(*)::float8 AS n,
              sum(CASE WHEN b.block_id = 0 THEN b.main_data_length + b.block_data_length + 24 ELSE b.block_data_length END)::float8 AS bytes,
              sum(b.block_fpi_length)::float8 AS fpi
       FROM pg_get_wal_block_info($1, $2) b
       LEFT JOIN pg_class cl ON cl.relfilenode = b.relfilenode
       GROUP BY 1 ORDER BY sum(b.main_data_length + b.block_data_length + b.block_fpi_length) DESC`,
      [lsnBefore, lsnAfter],
    )
  ).rows;
  console.log("WAL bytes per event by relation (records; full-page images):");
  for (const r of byRelation.slice(0, 20)) {
    console.log(`  ${r.rel.padEnd(32)} ${per(r.n)} blocks, ${Math.round(r.bytes / events)} B + ${Math.round(r.fpi / events)} B FPI`);
  }
  const byRecord = (
    await c.query<{ rm: string; n: number; bytes: number }>(
      `SELECT "resource_manager/record_type" AS rm, count::float8 AS n, combined_size::float8 AS bytes
       FROM pg_get_wal_stats($1, $2, true) WHERE count > 0 ORDER BY combined_size DESC LIMIT 10`,
      [lsnBefore, lsnAfter],
    )
  ).rows;
  console.log("WAL by record type, per event:");
  for (const r of byRecord) console.log(`  ${r.rm.padEnd(32)} ${per(r.n)} records, ${Math.round(r.bytes / events)} B`);
  console.log(`statements per event: ${per(counted.calls)}`);
  for (const [text, n] of [...counted.byText].sort((a, b) => b[1] - a[1]).slice(0, 8)) {
    console.log(`  ${per(n)}  ${text.replace(/\s+/g, " ").trim().slice(0, 100)}`);
  }
  await c.end();
} finally {
  await server.stop();
}
