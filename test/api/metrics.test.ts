/** GET /metrics: Prometheus text with what happened, read after real deliveries. */
import { expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { scrapeMetrics } from "../support/metrics.js";
import { useReceiver } from "../support/receiver.js";

const r = useReceiver((_, req) => ({ status: req.path === "/bad" ? 500 : 200 }));
const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_RETRY_SCHEDULE: "none" });

const scrape = () => scrapeMetrics(app.url);

it("counts publishes, attempts by result, finished deliveries and latency, and reads the queue and pool", async () => {
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const ingest = client(EventIngest, "connect-http2", app.url);
  await admin.createEndpoint({ tenantId: "m", url: `${r.url}/good` });
  await admin.createEndpoint({ tenantId: "m", url: `${r.url}/bad` });
  await ingest.publishBatch({
    events: [0, 1, 2].map((i) => ({ tenantId: "m", eventType: "t.e", payload: { case: "payloadJson" as const, value: `{"i":${i}}` } })),
  });
  await ingest.publish({ tenantId: "m", eventType: "t.e", idempotencyKey: "k", payload: { case: "payloadJson", value: "{}" } });
  await ingest.publish({ tenantId: "m", eventType: "t.e", idempotencyKey: "k", payload: { case: "payloadJson", value: "{}" } });
  await expect.poll(async () => (await scrape()).get('hookline_deliveries_finished_total{status="failed"}'), { timeout: 10_000 }).toBe(4);
  const m = await scrape();
  expect(m.get("hookline_events_published_total")).toBe(4); // the duplicate is not counted
  expect(m.get('hookline_attempts_total{result="2xx"}')).toBe(4);
  expect(m.get('hookline_attempts_total{result="5xx"}')).toBe(4);
  expect(m.get('hookline_deliveries_finished_total{status="succeeded"}')).toBe(4);
  expect(m.get("hookline_attempt_duration_seconds_count")).toBe(8);
  expect(m.get("hookline_outcomes_unwritable_total")).toBe(0);
  expect(m.get("hookline_queue_due")).toBe(0);
  expect(m.get("hookline_queue_oldest_due_seconds")).toBe(0);
  expect(m.get("hookline_circuits_open")).toBe(0);
  expect(m.get("hookline_status_watchers")).toBe(0);
  expect(m.get('hookline_db_pool_connections{state="max"}')).toBe(5);
  expect(m.has('hookline_db_pool_connections{state="used"}')).toBe(true);
  // The Node.js process's standard metrics.
  expect(m.get("process_resident_memory_bytes")).toBeGreaterThan(10 * 1024 * 1024);
  expect(m.get("nodejs_heap_size_used_bytes")).toBeGreaterThan(0);
  expect(m.get("process_cpu_seconds_total")).toBeGreaterThan(0);
  expect(m.has("nodejs_eventloop_lag_p99_seconds")).toBe(true);
  const [major, minor, patch] = process.versions.node.split(".");
  expect(m.get(`nodejs_version_info{version="${process.version}",major="${major}",minor="${minor}",patch="${patch}"}`)).toBe(1);
  // Waiting work shows in the queue gauges: a delivery due a minute ago that nobody claims.
  await db.query(
    `INSERT INTO events (id, tenant_id, event_type, body) VALUES ('evt_01JQUEUE00000000000000000', 'm', 't.e', '{}');
     UPDATE endpoints SET disabled = true WHERE url LIKE '%/good'`,
  );
  await db.query(
    `WITH d AS (
       INSERT INTO deliveries (id, event_id, endpoint_id, tenant_id, event_type, status)
       SELECT 'dlv_01JQUEUE0000000000000000', 'evt_01JQUEUE00000000000000000', id, 'm', 't.e', 1
       FROM endpoints WHERE url LIKE '%/good'
       RETURNING id, event_id, endpoint_id, tenant_id, seq
     )
     INSERT INTO delivery_queue (delivery_id, endpoint_id, tenant_id, seq, due_at)
     SELECT id, endpoint_id, tenant_id, seq, now() - interval '60 seconds' FROM d`,
  );
  // Database gauges are read at most once a second (METRICS_DB_MAX_AGE_MS).
  await expect.poll(async () => (await scrape()).get("hookline_queue_due"), { timeout: 5_000 }).toBe(1);
  expect((await scrape()).get("hookline_queue_oldest_due_seconds")).toBeGreaterThanOrEqual(59);
});

it("shows in-flight attempts of the busiest endpoints, the rest summed under _other", async () => {
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const ingest = client(EventIngest, "connect-http2", app.url);
  let release!: () => void;
  const held = new Promise<void>((resolve) => {
    release = resolve;
  });
  r.reply(async (_, req) => {
    if (req.path.startsWith("/slow")) await held;
    return { status: 200 };
  });
  // 25 endpoints, one hanging attempt each; endpoint 0 gets three.
  const endpoints = [];
  for (let i = 0; i < 25; i++) {
    const eventTypes = i === 0 ? ["busy.*", "busy0.*"] : ["busy.*"];
    endpoints.push(await admin.createEndpoint({ tenantId: "busy", url: `${r.url}/slow/${i}`, eventTypes }));
  }
  const first = endpoints[0]!.endpoint!.id;
  await ingest.publish({ tenantId: "busy", eventType: "busy.e", payload: { case: "payloadJson", value: "{}" } });
  await ingest.publishBatch({
    events: [0, 1].map(() => ({ tenantId: "busy", eventType: "busy0.e", payload: { case: "payloadJson" as const, value: "{}" } })),
  });
  try {
    const series = async () => [...(await scrape())].filter(([k]) => k.startsWith("hookline_endpoint_attempts_in_flight"));
    await expect.poll(async () => (await series()).reduce((sum, [, v]) => sum + v, 0), { timeout: 10_000 }).toBe(27);
    const s = new Map(await series());
    expect(s.size).toBe(21); // the 20 busiest, then the rest
    expect(s.get(`hookline_endpoint_attempts_in_flight{endpoint="${first}"}`)).toBe(3);
    expect(s.get('hookline_endpoint_attempts_in_flight{endpoint="_other"}')).toBe(5);
  } finally {
    release();
  }
  await expect.poll(async () => [...(await scrape())].filter(([k]) => k.startsWith("hookline_endpoint_attempts_in_flight")).length, { timeout: 10_000 }).toBe(0);
});
