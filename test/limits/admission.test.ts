/**
 * Admission: how many calls Hookline takes on at once. Each HTTP/2
 * connection is given HOOKLINE_HTTP2_MAX_STREAMS streams, and clients queue
 * the rest on their side; over all connections, unary calls past
 * HOOKLINE_MAX_CONCURRENT_CALLS are refused at once with RESOURCE_EXHAUSTED,
 * while health checks and streams go on. Both are what keep a flood of
 * publishes from growing the process's memory until it dies.
 */
import http2 from "node:http2";
import { once } from "node:events";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { HealthCheckResponse_ServingStatus, Health } from "../../gen/grpc/health/v1/health_pb.js";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { startTestHookline } from "../support/hookline.js";
import { scrapeMetrics } from "../support/metrics.js";
import { useReceiver } from "../support/receiver.js";

const r = useReceiver();
const db = useTestDatabase();

async function scrape(url: string, name: string): Promise<number | undefined> {
  return (await scrapeMetrics(url)).get(name);
}

describe("HOOKLINE_HTTP2_MAX_STREAMS", () => {
  it("is announced to every HTTP/2 client, 256 by default", async () => {
    const app = await startTestHookline(db.url, { HOOKLINE_SCHEDULER: "false" });
    try {
      const session = http2.connect(app.url);
      await once(session, "remoteSettings");
      expect(session.remoteSettings.maxConcurrentStreams).toBe(256);
      session.close();
    } finally {
      await app.stop();
    }
  });

  it("makes a client queue its streams past the limit on its own side, and serves them as others end", async () => {
    const app = await startTestHookline(db.url, { HOOKLINE_SCHEDULER: "false", HOOKLINE_HTTP2_MAX_STREAMS: "100" });
    const admin = client(WebhookAdmin, "connect-http2", app.url);
    const controllers = Array.from({ length: 150 }, () => new AbortController());
    const watches = controllers.map(async (c) => {
      try {
        for await (const _ of admin.watchDeliveries({ tenantId: "nobody" }, { signal: c.signal })) {
          // nothing is published for this tenant
        }
      } catch (err) {
        if (ConnectError.from(err).code !== Code.Canceled) throw err;
      }
    });
    try {
      // One connection: 100 streams open at the server, 50 wait in the client.
      await expect.poll(() => scrape(app.url, "hookline_status_watchers"), { timeout: 10_000 }).toBe(100);
      await new Promise((res) => setTimeout(res, 500));
      expect(await scrape(app.url, "hookline_status_watchers")).toBe(100);
      // Calls on other connections are not held up by this one's.
      const other = client(WebhookAdmin, "connect-http2", app.url);
      expect((await other.listEndpoints({ tenantId: "nobody" })).endpoints).toEqual([]);
      // Ending 60 lets the 50 waiting ones through.
      for (const c of controllers.slice(0, 60)) c.abort();
      await expect.poll(() => scrape(app.url, "hookline_status_watchers"), { timeout: 10_000 }).toBe(90);
    } finally {
      for (const c of controllers) c.abort();
      await Promise.all(watches);
      await app.stop();
    }
  });
});

describe("HOOKLINE_MAX_CONCURRENT_CALLS", () => {
  it("refuses unary calls past the limit with RESOURCE_EXHAUSTED, never health checks or streams, and takes calls again once some end", async () => {
    const limit = 3;
    const app = await startTestHookline(db.url, { HOOKLINE_SCHEDULER: "false", HOOKLINE_MAX_CONCURRENT_CALLS: String(limit) });
    let release!: () => void;
    const gate = new Promise<void>((res) => {
      release = res;
    });
    r.reply(async (_, req) => {
      if (req.path === "/hold") await gate;
      return { status: 200 };
    });
    try {
      const admin = client(WebhookAdmin, "connect-http2", app.url);
      const { endpoint } = await admin.createEndpoint({ tenantId: "adm", url: `${r.url}/hold` });
      // Three SendTestEvent calls stay in progress while the receiver holds its answers.
      const held = Array.from({ length: limit }, () => admin.sendTestEvent({ id: endpoint!.id }));
      await expect.poll(() => r.requests.filter((q) => q.path === "/hold").length, { timeout: 10_000 }).toBe(limit);
      expect(await scrape(app.url, "hookline_calls_in_progress")).toBe(limit);

      for (const protocol of ["connect-http1", "grpc", "grpc-web"] as const) {
        const err = await client(EventIngest, protocol, app.url)
          .publish({ tenantId: "adm", eventType: "a.e", payload: { case: "payloadJson", value: "{}" } })
          .then(
            () => undefined,
            (e: unknown) => ConnectError.from(e),
          );
        expect(err?.code, protocol).toBe(Code.ResourceExhausted);
        expect(err?.rawMessage).toMatch(/^server busy: 3 calls in progress \(HOOKLINE_MAX_CONCURRENT_CALLS\); retry with backoff$/);
      }
      expect(await db.query("SELECT id FROM events WHERE tenant_id = 'adm'")).toEqual([]);
      expect(await scrape(app.url, "hookline_calls_refused_total")).toBe(3);

      // Health checks and streams are never refused.
      const health = await client(Health, "grpc", app.url).check({ service: "" });
      expect(health.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      const watch = new AbortController();
      const updates = admin.watchDeliveries({ tenantId: "adm" }, { signal: watch.signal })[Symbol.asyncIterator]();
      const first = updates.next();
      await expect.poll(() => scrape(app.url, "hookline_status_watchers"), { timeout: 5_000 }).toBe(1);
      watch.abort();
      await first.catch(() => undefined);

      release();
      for (const res of await Promise.all(held)) expect(res.attempt!.responseStatus).toBe(200);
      expect(await scrape(app.url, "hookline_calls_in_progress")).toBe(0);
      const ok = await client(EventIngest, "grpc", app.url).publish({
        tenantId: "adm",
        eventType: "a.e",
        payload: { case: "payloadJson", value: "{}" },
      });
      expect(ok.eventId).toMatch(/^evt_/);
    } finally {
      release();
      await app.stop();
    }
  });
});
