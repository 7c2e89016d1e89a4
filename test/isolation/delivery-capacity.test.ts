/**
 * One endpoint, or one tenant, cannot take the delivery capacity of a
 * process: with a receiver that never answers, an in-flight limit above
 * HOOKLINE_MAX_IN_FLIGHT and the longest timeout, a hostile tenant's
 * deliveries hold at most their fair share of the slots, and another
 * tenant's deliveries keep arriving in milliseconds. A second hanging
 * endpoint of the same tenant stays within the tenant's share, and the
 * tenant's own healthy endpoint is served too. The shares (src/delivery/
 * lanes.ts): a tenant alone half the slots, its one endpoint a quarter.
 */
import { describe, expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { report, scale } from "../support/chaos.js";
import { useClient } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { useReceiver } from "../support/receiver.js";
import { arrivalLatencies, percentile } from "./latency.js";

const MAX_IN_FLIGHT = 256;

const hanging = useReceiver(() => new Promise(() => {}));
const healthy = useReceiver();
const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_MAX_IN_FLIGHT: String(MAX_IN_FLIGHT), HOOKLINE_SHUTDOWN_TIMEOUT: "1s" });
const admin = useClient(WebhookAdmin, "connect-http2", app);
const ingest = useClient(EventIngest, "connect-http2", app);

/** A hostile endpoint: the largest limit and timeout, and a receiver that never answers; `n` events queued for it. */
async function hog(tenantId: string, n: number): Promise<void> {
  await admin.createEndpoint({ tenantId, url: `${hanging.url}/${tenantId}`, maxInFlight: 1000, timeoutSeconds: 300 });
  for (let i = 0; i < n; i += 1000) {
    await ingest.publishBatch({
      events: Array.from({ length: Math.min(1000, n - i) }, () => ({ tenantId, eventType: "hog.e", payload: { case: "payloadJson" as const, value: "{}" } })),
    });
  }
}

/** Waits until the hanging receiver stops getting new requests: the hog holds all it can. */
async function hogSettled(atLeast: number): Promise<number> {
  await hanging.waitFor(atLeast, 20_000);
  await hanging.quiet(300);
  return hanging.concurrency.now;
}

describe("a hanging endpoint with max_in_flight 1000 and a 300 s timeout", () => {
  it("holds at most its share of the process's slots, and another tenant's deliveries arrive in under a second", async () => {
    await hog("hostile", scale(600, 3_000));
    const held = await hogSettled(32);
    expect(held).toBeLessThanOrEqual(MAX_IN_FLIGHT / 4);

    await admin.createEndpoint({ tenantId: "victim", url: `${healthy.url}/victim` });
    const latencies = await arrivalLatencies(ingest, healthy, "victim", scale(50, 300));
    const p50 = percentile(latencies, 0.5);
    const p99 = percentile(latencies, 0.99);
    report("hostile endpoint: another tenant's latency", { hogInFlight: held, events: latencies.length, p50Ms: p50, p99Ms: p99 });
    expect(p99).toBeLessThan(1_000);
  });

  it("a second hanging endpoint of the same tenant stays within the tenant's share, and the other tenant is still served", async () => {
    const before = hanging.requests.length;
    await hog("hostile", scale(600, 3_000));
    // The new endpoint's first requests arrive, or none can: wait for the hog to be quiet either way.
    await hanging.quiet(500);
    const held = hanging.concurrency.now;
    expect(held).toBeLessThanOrEqual(MAX_IN_FLIGHT / 2);
    const latencies = await arrivalLatencies(ingest, healthy, "victim", scale(50, 300));
    const p99 = percentile(latencies, 0.99);
    report("hostile tenant, second endpoint: another tenant's latency", {
      newRequests: hanging.requests.length - before,
      hogInFlight: held,
      p99Ms: p99,
    });
    expect(p99).toBeLessThan(1_000);
  });

  it("a tenant's own healthy endpoint is not starved by its hanging one", async () => {
    await admin.createEndpoint({ tenantId: "hostile", url: `${healthy.url}/hostile` });
    const latencies = await arrivalLatencies(ingest, healthy, "hostile", scale(20, 100));
    expect(percentile(latencies, 0.99)).toBeLessThan(1_000);
  });
});
