/**
 * Receivers that break the connection rather than answer badly: resets,
 * bodies that trickle past the timeout, 10 MB answers, redirects to private
 * addresses, and an endpoint that never recovers. Each delivery ends in the
 * documented state with the documented number of attempts.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DeliveryStatus } from "../../gen/hookline/v1/delivery_pb.js";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client, useClient } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { startTestHookline, type TestHookline, useTestHookline } from "../support/hookline.js";

const servers: http.Server[] = [];

const db = useTestDatabase();
// Two retries: three attempts in all.
const app = useTestHookline(db, {
  HOOKLINE_RETRY_SCHEDULE: "50ms,50ms",
  HOOKLINE_THROTTLE_MIN_DELAY: "50ms",
  HOOKLINE_CIRCUIT_FAILURES: "100",
});
const admin = useClient(WebhookAdmin, "connect-http1", app);
const ingest = useClient(EventIngest, "connect-http1", app);

afterAll(async () => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
});

/** A raw HTTP server whose handler does whatever the test needs; counts requests. */
async function server(handler: http.RequestListener) {
  let count = 0;
  const s = http.createServer((req, res) => {
    count++;
    handler(req, res);
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`, requests: () => count };
}

async function deliver(tenantId: string, url: string, options: { timeoutSeconds?: number } = {}) {
  await admin.createEndpoint({ tenantId, url, ...options });
  const { eventId } = await ingest.publish({ tenantId, eventType: "m.e", payload: { case: "payloadJson", value: '{"x":1}' } });
  const id = async () => (await admin.listDeliveries({ eventId })).deliveries[0]!.id;
  return { id: await id() };
}

async function finalState(id: string, timeout = 15_000) {
  await expect
    .poll(async () => (await admin.getDelivery({ id })).delivery!.status, { timeout })
    .toBeOneOf([DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED]);
  return (await admin.getDelivery({ id })).delivery!;
}

describe("receivers that misbehave", () => {
  it("a connection reset before any answer is a connection error, retried to FAILED after 3 attempts", async () => {
    const s = await server((req) => req.socket.destroy());
    const { id } = await deliver("reset", `${s.url}/reset`);
    const d = await finalState(id);
    expect(d.status).toBe(DeliveryStatus.FAILED);
    expect(d.attempts).toHaveLength(3);
    for (const a of d.attempts) {
      expect(a.errorClass).toBe("connection");
      expect(a.responseStatus).toBe(0);
    }
    expect(s.requests()).toBe(3);
  });

  it("a body that trickles past the timeout is a timeout, even though the status was 200", async () => {
    const s = await server((_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      const timer = setInterval(() => res.write("."), 200);
      res.on("close", () => clearInterval(timer));
    });
    const { id } = await deliver("trickle", `${s.url}/trickle`, { timeoutSeconds: 1 });
    const d = await finalState(id);
    expect(d.status).toBe(DeliveryStatus.FAILED);
    expect(d.attempts).toHaveLength(3);
    expect(d.attempts[0]).toMatchObject({ errorClass: "timeout", responseStatus: 0 });
    expect(Number(d.attempts[0]!.durationMs)).toBeGreaterThanOrEqual(990);
    expect(Number(d.attempts[0]!.durationMs)).toBeLessThan(2_000);
  });

  it("a 10 MB answer succeeds at once, keeping only the first 4 KiB", async () => {
    const chunk = Buffer.alloc(64 * 1024, "a");
    const s = await server((_req, res) => {
      res.writeHead(200, { "content-type": "text/plain", "content-length": String(160 * chunk.length) });
      for (let i = 0; i < 160; i++) res.write(chunk);
      res.end();
    });
    const { id } = await deliver("big", `${s.url}/big`);
    const d = await finalState(id);
    expect(d.status).toBe(DeliveryStatus.SUCCEEDED);
    expect(d.attempts).toHaveLength(1);
    expect(d.attempts[0]!.responseBody).toHaveLength(4096);
  });

  it("a redirect to a private address is not followed: an http error naming the target, retried to FAILED", async () => {
    const s = await server((_req, res) => {
      res.writeHead(302, { location: "http://169.254.169.254/latest/meta-data/" }).end();
    });
    const { id } = await deliver("redirect", `${s.url}/redirect`);
    const d = await finalState(id);
    expect(d.status).toBe(DeliveryStatus.FAILED);
    expect(d.attempts).toHaveLength(3);
    expect(d.attempts[0]).toMatchObject({ responseStatus: 302, errorClass: "http" });
    expect(d.attempts[0]!.error).toContain("169.254.169.254");
    expect(s.requests()).toBe(3);
  });
});

describe("an endpoint failing without a success for longer than HOOKLINE_DISABLE_AFTER", () => {
  let strict: TestHookline;
  let admin: ReturnType<typeof client<typeof WebhookAdmin>>;
  let ingest: ReturnType<typeof client<typeof EventIngest>>;
  beforeAll(async () => {
    // Alone on the database, so that only its rules judge the endpoint.
    await app.stop();
    strict = await startTestHookline(db.url, { HOOKLINE_DISABLE_AFTER: "1s", HOOKLINE_CIRCUIT_FAILURES: "100" });
    admin = client(WebhookAdmin, "connect-http1", strict.url);
    ingest = client(EventIngest, "connect-http1", strict.url);
  });
  afterAll(async () => {
    await strict?.stop();
  });

  it("is disabled with the reason, and its waiting deliveries fail", async () => {
    const s = await server((_req, res) => res.writeHead(500).end());
    const { endpoint } = await admin.createEndpoint({
      tenantId: "dying",
      url: `${s.url}/dying`,
      retryPolicy: { policy: { case: "schedule", value: { delays: Array.from({ length: 40 }, () => ({ nanos: 100_000_000 })) } } },
    });
    const { eventId } = await ingest.publish({ tenantId: "dying", eventType: "m.e", payload: { case: "payloadJson", value: "{}" } });
    await expect
      .poll(async () => (await admin.getEndpoint({ id: endpoint!.id })).endpoint!.disabled, { timeout: 10_000 })
      .toBe(true);
    const { endpoint: after } = await admin.getEndpoint({ id: endpoint!.id });
    expect(after!.disabledReason).toMatch(/^failing without a success since \d{4}-\d\d-\d\dT/);
    const { deliveries } = await admin.listDeliveries({ eventId });
    await expect
      .poll(async () => (await admin.getDelivery({ id: deliveries[0]!.id })).delivery!.status)
      .toBe(DeliveryStatus.FAILED);
    const { delivery } = await admin.getDelivery({ id: deliveries[0]!.id });
    expect(delivery!.lastError).toMatch(/^endpoint disabled: failing without a success since/);
    // Disabled after about a second of failures, long before the 41 attempts ran out.
    expect(delivery!.attemptCount).toBeLessThan(30);
  });
});
