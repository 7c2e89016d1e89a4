/**
 * The cost of GET /metrics: a flood of scrapes (200 at once) must not cost
 * the database a query each, nor the event loop a rendering each, nor hold
 * up publishes. The database-derived gauges are read at most once per
 * METRICS_DB_MAX_AGE_MS, by one query shared by every scrape in flight, and
 * the text is rendered at most RENDERS_PER_SECOND times a second. Queries
 * are counted at the Sql layer (every statement Hookline sends goes through
 * it).
 */
import http from "node:http";
import { afterAll, beforeAll, expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { Metrics, METRICS_DB_MAX_AGE_MS, RENDERS_PER_SECOND, sharedFor } from "../../src/metrics/metrics.js";
import { report, scale } from "../support/chaos.js";
import { client } from "../support/clients.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { startTestHookline, type TestHookline } from "../support/hookline.js";
import { scrapeMetrics } from "../support/metrics.js";

let db: TestDatabase;
let app: TestHookline;
/** Statements sent through the Sql layer, but the database probe's `SELECT 1`. */
const statements: string[] = [];
/** Renderings of the metrics text, counted for the report. */
let renders = 0;

beforeAll(async () => {
  // Counts renderings of the text, through the private method text() shares.
  const proto = Metrics.prototype as unknown as { render(this: Metrics): Promise<unknown> };
  const render = proto.render;
  proto.render = function (this: Metrics) {
    renders++;
    return render.call(this);
  };
  db = await createTestDatabase();
  // No scheduler: its polls would be counted with the scrapes' queries.
  app = await startTestHookline(db.url, { HOOKLINE_SCHEDULER: "false" });
  const query = app.store.sql.query.bind(app.store.sql);
  app.store.sql.query = (text, values, prepare) => {
    if (text !== "SELECT 1") statements.push(text);
    return query(text, values, prepare);
  };
});

afterAll(async () => {
  await app?.stop();
  await db?.drop();
});

/** One scrape on a connection of its own (as 200 Prometheus servers would), resolving its status. */
function scrape(): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${app.url}/metrics`, { agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
  });
}

/** `n` scrapes at once; resolves the statements they caused and how long they took. */
async function burst(n: number): Promise<{ statements: number; renders: number; ms: number; statuses: number[] }> {
  const before = { statements: statements.length, renders };
  const start = performance.now();
  const statuses = await Promise.all(Array.from({ length: n }, scrape));
  return { statements: statements.length - before.statements, renders: renders - before.renders, ms: Math.round(performance.now() - start), statuses };
}

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

it("answers 200 scrapes at once with one database query and a few renderings, however long they take", async () => {
  // The first scrape of the run: nothing cached yet.
  const first = await burst(200);
  expect(first.statuses.every((s) => s === 200)).toBe(true);
  // Once the cached values are older than their window, the next burst reads them once more.
  await new Promise((resolve) => setTimeout(resolve, METRICS_DB_MAX_AGE_MS + 100));
  const second = await burst(200);
  report("metrics: 200 scrapes at once", {
    statementsFirstBurst: first.statements,
    statementsSecondBurst: second.statements,
    rendersFirstBurst: first.renders,
    rendersSecondBurst: second.renders,
    firstBurstMs: first.ms,
    secondBurstMs: second.ms,
  });
  for (const b of [first, second]) {
    // One query per window at most: two for a burst that outlasts one (a busy machine).
    expect(b.statements).toBeLessThanOrEqual(Math.max(2, Math.ceil(b.ms / METRICS_DB_MAX_AGE_MS)));
    // A burst of renderings, then RENDERS_PER_SECOND a second; the other scrapes share them.
    expect(b.renders).toBeLessThanOrEqual(RENDERS_PER_SECOND * (1 + Math.ceil(b.ms / 1000)));
  }
});

it("keeps Publish latency while scrapes flood in", async () => {
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const ingest = client(EventIngest, "connect-http2", app.url);
  await admin.createEndpoint({ tenantId: "scraped", url: "https://receiver.example/hook" });
  const publish = async () => {
    const start = performance.now();
    await ingest.publish({ tenantId: "scraped", eventType: "s.e", payload: { case: "payloadJson", value: "{}" } });
    return performance.now() - start;
  };
  const n = scale(50, 500);
  const quiet: number[] = [];
  for (let i = 0; i < n; i++) quiet.push(await publish());
  // Bursts of 200 scrapes, one after another, while the same publishes run.
  let flooding = true;
  let scrapes = 0;
  const flood = (async () => {
    while (flooding) scrapes += (await burst(200)).statuses.length;
  })();
  const busy: number[] = [];
  try {
    for (let i = 0; i < n; i++) busy.push(await publish());
  } finally {
    flooding = false;
    await flood;
  }
  const ms = (x: number) => Math.round(x * 10) / 10;
  report("metrics: Publish latency, quiet and during bursts of 200 scrapes", {
    publishes: n,
    scrapesDuring: scrapes,
    quietP50Ms: ms(quantile(quiet, 0.5)),
    quietP99Ms: ms(quantile(quiet, 0.99)),
    floodedP50Ms: ms(quantile(busy, 0.5)),
    floodedP99Ms: ms(quantile(busy, 0.99)),
  });
  expect(scrapes).toBeGreaterThan(0);
});

it("shows database changes within the cache window", async () => {
  const before = (await scrapeMetrics(app.url)).get("hookline_circuits_open");
  expect(before).toBe(0);
  await db.query("UPDATE endpoints SET circuit_open_until = now() + interval '1 hour' WHERE tenant_id = 'scraped'");
  const changedAt = performance.now();
  await expect.poll(async () => (await scrapeMetrics(app.url)).get("hookline_circuits_open"), { timeout: 10_000, interval: 50 }).toBe(1);
  report("metrics: a database change seen by /metrics", { afterMs: Math.round(performance.now() - changedAt), windowMs: METRICS_DB_MAX_AGE_MS });
});

it("shares one load among concurrent callers, keeps it for its window, and never keeps a failure", async () => {
  let loads = 0;
  let fail = true;
  const read = sharedFor(60_000, async () => {
    loads++;
    await new Promise((resolve) => setTimeout(resolve, 20));
    if (fail) throw new Error("database down");
    return loads;
  });
  const failed = await Promise.allSettled([read(), read(), read()]);
  expect(failed.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
  expect(loads).toBe(1);
  fail = false;
  const values = await Promise.all([read(), read()]);
  expect(values.map((v) => v.value)).toEqual([2, 2]);
  expect((await read()).value).toBe(2);
  expect(loads).toBe(2);
});
