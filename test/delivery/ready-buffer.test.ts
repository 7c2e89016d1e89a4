/**
 * The scheduler's ready buffer: deliveries of a fast endpoint are leased
 * ahead of a free slot, never sent beyond the endpoint's limits, and given
 * back (due at once, no attempt used) when the process stops; and sending
 * stops while outcomes cannot be stored.
 */
import pg from "pg";
import { expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { startTestHookline } from "../support/hookline.js";
import { useReceiver } from "../support/receiver.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const r = useReceiver();
const db = useTestDatabase();

it("leases a fast endpoint's backlog ahead, within its limit, and gives unstarted leases back on stop", async () => {
  const app = await startTestHookline(db.url, { HOOKLINE_POLL_INTERVAL: "1h", HOOKLINE_SHUTDOWN_TIMEOUT: "5s" });
  let inFlight = 0;
  let maxSeen = 0;
  r.reply(async () => {
    inFlight++;
    maxSeen = Math.max(maxSeen, inFlight);
    await sleep(20);
    inFlight--;
    return { status: 200 };
  });
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const ingest = client(EventIngest, "connect-http2", app.url);
  const { endpoint } = await admin.createEndpoint({ tenantId: "buf", url: `${r.url}/buf`, maxInFlight: 2 });
  const events = 300;
  await ingest.publishBatch({
    events: Array.from({ length: events }, (_, i) => ({
      tenantId: "buf",
      eventType: "t.e",
      payload: { case: "payloadJson" as const, value: `{"n":${i}}` },
    })),
  });
  // Once the endpoint's response time is known, more are leased than are in flight.
  await expect
    .poll(
      async () =>
        Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM delivery_queue WHERE locked_by IS NOT NULL"))[0]!.n),
      { timeout: 5_000, interval: 5 },
    )
    .toBeGreaterThan(2);
  await app.stop();
  expect(maxSeen).toBeLessThanOrEqual(2);
  const sent = r.requests.length;
  expect(sent).toBeLessThan(events);
  const rows = await db.query<{ status: number; attempt_count: number; locked_by: string | null; due: boolean }>(
    "SELECT d.status, d.attempt_count, q.locked_by, q.due_at <= now() AS due FROM deliveries d LEFT JOIN delivery_queue q ON q.delivery_id = d.id WHERE d.endpoint_id = $1",
    [endpoint!.id],
  );
  // Nothing is left leased, every request sent was recorded, and the rest is due at once with no attempt used.
  expect(rows.filter((d) => d.locked_by !== null)).toEqual([]);
  expect(rows.reduce((a, d) => a + d.attempt_count, 0)).toBe(sent);
  const waiting = rows.filter((d) => d.status !== 3);
  expect(waiting.length).toBe(events - sent);
  expect(waiting.every((d) => d.attempt_count === 0 && d.due)).toBe(true);
});

it("stops sending while outcomes cannot be stored: sent and unstored stay under 2 x HOOKLINE_MAX_IN_FLIGHT", async () => {
  // What a crash would send twice is what was sent and not stored; with the
  // outcome writer blocked (here by a lock; in life a slow or starved
  // database), the scheduler must stop, not drain its ready buffer.
  const maxInFlight = 8;
  const app = await startTestHookline(db.url, {
    HOOKLINE_MAX_IN_FLIGHT: String(maxInFlight),
    HOOKLINE_POLL_INTERVAL: "1h",
    HOOKLINE_SHUTDOWN_TIMEOUT: "5s",
  });
  r.reply(async () => {
    await sleep(2);
    return { status: 200 };
  });
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const ingest = client(EventIngest, "connect-http2", app.url);
  await admin.createEndpoint({ tenantId: "stall", url: `${r.url}/stall`, maxInFlight: 100 });
  const sentHere = () => r.requests.filter((q) => q.path === "/stall").length;
  const publish = (n: number, from: number) =>
    ingest.publishBatch({
      events: Array.from({ length: n }, (_, i) => ({
        tenantId: "stall",
        eventType: "t.e",
        payload: { case: "payloadJson" as const, value: `{"n":${from + i}}` },
      })),
    });
  const stored = async () =>
    Number(
      (
        await db.query<{ n: string }>(
          "SELECT count(*) AS n FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.tenant_id = 'stall'",
        )
      )[0]!.n,
    );
  await publish(500, 0);
  // Block the writer mid-flow, once the lane knows the endpoint's response
  // time and buffers ahead.
  await expect.poll(sentHere, { timeout: 10_000, interval: 2 }).toBeGreaterThanOrEqual(100);
  const locker = new pg.Client({ connectionString: db.url });
  await locker.connect();
  try {
    await locker.query("BEGIN");
    await locker.query("LOCK TABLE attempts IN SHARE MODE");
    // Sending stops by itself; wait until nothing more arrives for a second.
    await r.quiet(1_000, (q) => q.path === "/stall");
    expect(sentHere()).toBeLessThan(500);
    const unstored = sentHere() - (await stored());
    // Some were sent after the writer stopped (at least what one endpoint
    // may have in flight: a quarter of the process's slots when alone, see
    // lanes.ts), and never more than the bound.
    expect(unstored).toBeGreaterThanOrEqual(maxInFlight / 4);
    expect(unstored).toBeLessThanOrEqual(2 * maxInFlight);
  } finally {
    await locker.query("COMMIT");
    await locker.end();
  }
  // Unblocked, it delivers the rest, each once.
  await expect.poll(sentHere, { timeout: 30_000 }).toBe(500);
  await app.stop();
  const ids = new Set(r.requests.filter((q) => q.path === "/stall").map((q) => String(q.headers["webhook-id"])));
  expect(ids.size).toBe(500);
}, 60_000);
