/**
 * Backlogs held behind open circuits do not stall healthy endpoints. As a
 * new user would: endpoints that answer 500 or hang (3 s timeout, retries
 * 2s,5s,10s) hold a few thousand deliveries behind their circuits, in the
 * healthy endpoint's tenant or in another one; then 2 x 1,000 events go to
 * the healthy endpoint, and the longest gap between its arrivals is
 * measured, across the circuits' cool-downs ending and their probes.
 */
import { describe, expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { report, scale } from "../support/chaos.js";
import { useClient } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { type Receiver, useReceivers } from "../support/receiver.js";

/** The circuits' cool-down: long enough for several to end while the healthy endpoint's events arrive. */
const COOLDOWN_MS = scale(15_000, 30_000);
/** Failing endpoints per scenario, half answering 500, half hanging. */
const FAILING_ENDPOINTS = scale(8, 12);

const newReceiver = useReceivers();
const db = useTestDatabase();
const app = useTestHookline(db, {
  HOOKLINE_RETRY_SCHEDULE: "2s,5s,10s",
  HOOKLINE_RETRY_JITTER: "0.2",
  HOOKLINE_REQUEST_TIMEOUT: "3s",
  HOOKLINE_CIRCUIT_COOLDOWN: `${COOLDOWN_MS}ms`,
  HOOKLINE_SHUTDOWN_TIMEOUT: "1s",
});
const admin = useClient(WebhookAdmin, "connect-http2", app);
const ingest = useClient(EventIngest, "connect-http2", app);

function receiver(answer: "ok" | "500" | "hang"): Promise<Receiver> {
  if (answer === "500") return newReceiver(() => ({ status: 500, body: "down" }));
  if (answer === "hang") return newReceiver(() => new Promise(() => {}));
  return newReceiver();
}

async function publish(tenantId: string, eventType: string, n: number): Promise<void> {
  for (let i = 0; i < n; i += 1000) {
    await ingest.publishBatch({
      events: Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({
        tenantId,
        eventType,
        payload: { case: "payloadJson" as const, value: `{"n":${i + j}}` },
      })),
    });
  }
}

/**
 * Endpoints that fail (half answering 500, half hanging), with a backlog of
 * deliveries behind their open circuits: a publisher unaware of them keeps
 * sending batches of `batch` events while the circuits open (some of its
 * statements race the opening), and one more after. Returns once all
 * circuits have been open for longer than a scheduler keeps an idle
 * endpoint's lane in memory (5 s), as when the healthy endpoint's events
 * come a while later.
 */
async function failingBacklog(tenantId: string, batch: number): Promise<string[]> {
  const ids: string[] = [];
  for (const answer of Array.from({ length: FAILING_ENDPOINTS }, (_, i): "500" | "hang" => (i % 2 === 0 ? "500" : "hang"))) {
    const r = await receiver(answer);
    const { endpoint } = await admin.createEndpoint({ tenantId, url: `${r.url}/${answer}`, eventTypes: ["failing.e"], timeoutSeconds: 3 });
    ids.push(endpoint!.id);
  }
  const openCircuits = async () =>
    (await db.query<{ n: number }>("SELECT count(*)::int AS n FROM endpoints WHERE id = ANY ($1) AND circuit_open_until > now()", [ids]))[0]!.n;
  const deadline = Date.now() + 30_000;
  while ((await openCircuits()) < ids.length) {
    if (Date.now() > deadline) throw new Error("the failing endpoints' circuits did not all open within 30 s");
    await publish(tenantId, "failing.e", batch);
  }
  await publish(tenantId, "failing.e", batch);
  await new Promise((resolve) => setTimeout(resolve, 6_000));
  return ids;
}

/** Publishes 2 x 1,000 events to a healthy endpoint of `tenantId`; returns the longest gap in ms between its arrivals (from the publish on). */
async function healthyGaps(tenantId: string): Promise<{ longestGapMs: number; spanMs: number }> {
  const r = await receiver("ok");
  await admin.createEndpoint({ tenantId, url: `${r.url}/healthy`, eventTypes: ["healthy.e"] });
  const n = scale(1_000, 1_000);
  const start = Date.now();
  await publish(tenantId, "healthy.e", n);
  await publish(tenantId, "healthy.e", n);
  await r.waitFor(2 * n, 120_000);
  const times = [start, ...r.requests.map((q) => q.at)].sort((a, b) => a - b);
  let longestGapMs = 0;
  for (let i = 1; i < times.length; i++) longestGapMs = Math.max(longestGapMs, times[i]! - times[i - 1]!);
  return { longestGapMs, spanMs: times.at(-1)! - start };
}

describe("a healthy endpoint next to circuit-held backlogs", () => {
  it("in another tenant: never waits more than 2 s between arrivals", async () => {
    await failingBacklog("failing-tenant", 250);
    const { longestGapMs, spanMs } = await healthyGaps("healthy-tenant");
    report("circuit-held backlogs in another tenant", { longestGapMs, spanMs });
    expect(longestGapMs).toBeLessThanOrEqual(2_000);
  });

  it("in the same tenant: never waits more than 2 s between arrivals", async () => {
    await failingBacklog("mixed-tenant", 250);
    const { longestGapMs, spanMs } = await healthyGaps("mixed-tenant");
    report("circuit-held backlogs in the same tenant", { longestGapMs, spanMs });
    expect(longestGapMs).toBeLessThanOrEqual(2_000);
  });
});
