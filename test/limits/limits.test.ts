/**
 * Hookline at its limits: oversized payloads and requests, the largest batch
 * and one past it, 1,000 concurrent publishes, a flood past the pending
 * publish bound, and 10,000 endpoints on one tenant. Each ends in success or
 * a clear error, never a crash, a half-written batch or a queue in memory
 * without bound.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { report, scale } from "../support/chaos.js";
import { client } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { startTestHookline, useTestHookline } from "../support/hookline.js";
import { useReceiver } from "../support/receiver.js";

const MAX_PAYLOAD = 64 * 1024;
const MAX_REQUEST = 1024 * 1024;

const r = useReceiver();
const db = useTestDatabase();
const app = useTestHookline(db, {
  HOOKLINE_MAX_PAYLOAD_BYTES: String(MAX_PAYLOAD),
  HOOKLINE_MAX_REQUEST_BYTES: String(MAX_REQUEST),
  HOOKLINE_DB_POOL_SIZE: "10",
  HOOKLINE_MAX_IN_FLIGHT: "256",
});

const failure = (p: Promise<unknown>) =>
  p.then(
    () => undefined,
    (err: unknown) => ConnectError.from(err),
  );
const count = async (sql: string) => (await db.query<{ n: number }>(sql))[0]!.n;
const json = (value: string) => ({ case: "payloadJson" as const, value });

describe("sizes", () => {
  it("refuses a payload over the limit, naming it, and stores nothing of its batch", async () => {
    const ingest = client(EventIngest, "grpc", app.url);
    const big = JSON.stringify({ pad: "x".repeat(MAX_PAYLOAD) });
    const err = await failure(ingest.publish({ tenantId: "lim-size", eventType: "big.e", payload: json(big) }));
    expect(err?.code).toBe(Code.ResourceExhausted);
    expect(err?.rawMessage).toMatch(/payload: \d+ bytes is over the limit of 65536 bytes/);
    const batch = await failure(
      ingest.publishBatch({
        events: [
          { tenantId: "lim-size", eventType: "big.e", payload: json("{}") },
          { tenantId: "lim-size", eventType: "big.e", payload: json(big) },
        ],
      }),
    );
    expect(batch?.code).toBe(Code.ResourceExhausted);
    expect(batch?.rawMessage).toMatch(/events\[1\]\.payload/);
    expect(await count("SELECT count(*)::int AS n FROM events WHERE tenant_id = 'lim-size'")).toBe(0);
  });

  it("refuses a request over HOOKLINE_MAX_REQUEST_BYTES before parsing it, on every protocol, and keeps serving", async () => {
    const events = Array.from({ length: 20 }, () => ({ tenantId: "lim-size", eventType: "big.e", payload: json(JSON.stringify({ pad: "y".repeat(60_000) })) }));
    for (const protocol of ["connect-http1", "connect-http2", "grpc", "grpc-web"] as const) {
      const ingest = client(EventIngest, protocol, app.url);
      const err = await failure(ingest.publishBatch({ events }));
      expect(err?.code, protocol).toBe(Code.ResourceExhausted);
      // The same client's next call works: over HTTP/1.1 the refused
      // request's unsent body must not be owed on a kept-alive connection.
      await ingest.publish({ tenantId: "lim-size-ok", eventType: "ok.e", payload: json("{}") }, { timeoutMs: 5_000 });
    }
    expect(await count("SELECT count(*)::int AS n FROM events WHERE tenant_id = 'lim-size'")).toBe(0);
  });
});

describe("batches", () => {
  it("takes 1,000 events in one batch and refuses 1,001 whole", async () => {
    const ingest = client(EventIngest, "grpc", app.url);
    const events = (n: number) => Array.from({ length: n }, (_, i) => ({ tenantId: "lim-batch", eventType: "b.e", payload: json(`{"i":${i}}`) }));
    expect((await ingest.publishBatch({ events: events(1_000) })).results).toHaveLength(1_000);
    const err = await failure(ingest.publishBatch({ events: events(1_001) }));
    expect(err?.code).toBe(Code.InvalidArgument);
    expect(err?.rawMessage).toMatch(/events/);
    expect(await count("SELECT count(*)::int AS n FROM events WHERE tenant_id = 'lim-batch'")).toBe(1_000);
  });
});

describe("concurrency", () => {
  it("stores 1,000 concurrent Publish calls over one connection", async () => {
    const ingest = client(EventIngest, "connect-http2", app.url);
    const heapBefore = process.memoryUsage().heapUsed;
    const started = performance.now();
    const settled = await Promise.allSettled(
      Array.from({ length: 1_000 }, (_, i) => ingest.publish({ tenantId: "lim-conc", eventType: "c.e", payload: json(`{"i":${i}}`) })),
    );
    const ms = Math.round(performance.now() - started);
    const codes = settled.filter((s) => s.status === "rejected").map((s) => Code[ConnectError.from((s as PromiseRejectedResult).reason).code]);
    expect(codes).toEqual([]);
    expect(await count("SELECT count(*)::int AS n FROM events WHERE tenant_id = 'lim-conc'")).toBe(1_000);
    report("limits: 1,000 concurrent Publish calls", {
      "calls": 1_000,
      "failed": codes.length,
      "all answered in (ms)": ms,
      "heap growth of the test process, Hookline included (MB)": Math.round((process.memoryUsage().heapUsed - heapBefore) / 1e5) / 10,
    });
  });

  it("refuses publishes past the pending bound with ResourceExhausted, stores every one it accepted, and serves on", async () => {
    const small = await startTestHookline(db.url, { HOOKLINE_PUBLISH_PENDING_BYTES: String(64 * 1024), HOOKLINE_SCHEDULER: "false" });
    try {
      const ingest = client(EventIngest, "connect-http2", small.url);
      const payload = JSON.stringify({ pad: "z".repeat(4_000) });
      const settled = await Promise.allSettled(
        Array.from({ length: 1_000 }, () => ingest.publish({ tenantId: "lim-flood", eventType: "f.e", payload: json(payload) })),
      );
      const accepted = settled.filter((s) => s.status === "fulfilled").length;
      const codes = new Map<string, number>();
      for (const s of settled) {
        if (s.status === "rejected") {
          const code = Code[ConnectError.from(s.reason).code];
          codes.set(code, (codes.get(code) ?? 0) + 1);
        }
      }
      expect([...codes.keys()]).toEqual(["ResourceExhausted"]);
      expect(accepted).toBeGreaterThan(0);
      expect(await count("SELECT count(*)::int AS n FROM events WHERE tenant_id = 'lim-flood'")).toBe(accepted);
      // Once the flood is stored, publishes are taken again.
      await ingest.publish({ tenantId: "lim-flood", eventType: "f.e", payload: json(payload) });
      report("limits: 1,000 concurrent 4 KB publishes against a 64 KiB pending bound", {
        accepted,
        "refused with ResourceExhausted": codes.get("ResourceExhausted") ?? 0,
        "stored": accepted,
      });
    } finally {
      await small.stop();
    }
  });
});

describe("many endpoints", () => {
  const N = scale(10_000, 10_000);

  it(`keeps ${N.toLocaleString("en")} endpoints on one tenant: created, listed page by page, and all reached by one event`, { timeout: 300_000 }, async () => {
    const admin = client(WebhookAdmin, "connect-http2", app.url);
    const ingest = client(EventIngest, "connect-http2", app.url);
    let created = 0;
    const createStarted = performance.now();
    await Promise.all(
      Array.from({ length: 32 }, async (_, worker) => {
        for (let i = worker; i < N; i += 32) {
          await admin.createEndpoint({ tenantId: "lim-many", url: `${r.url}/many/${i}`, eventTypes: ["many.*"] });
          created++;
        }
      }),
    );
    const createMs = Math.round(performance.now() - createStarted);
    expect(created).toBe(N);

    const listStarted = performance.now();
    const ids = new Set<string>();
    let pageToken = "";
    let pages = 0;
    do {
      const page = await admin.listEndpoints({ tenantId: "lim-many", pageSize: 1_000, pageToken });
      for (const e of page.endpoints) ids.add(e.id);
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken !== "");
    const listMs = Math.round(performance.now() - listStarted);
    expect(ids.size).toBe(N);

    const publishStarted = performance.now();
    const { eventId } = await ingest.publish({ tenantId: "lim-many", eventType: "many.e", payload: json("{}") });
    const publishMs = Math.round(performance.now() - publishStarted);
    await r.waitFor(N, 240_000);
    const deliverMs = Math.round(performance.now() - publishStarted);
    const paths = new Set(r.requests.filter((q) => q.headers["webhook-id"] === eventId).map((q) => q.path));
    expect(paths.size).toBe(N);
    expect(await count(`SELECT count(*)::int AS n FROM deliveries WHERE event_id = '${eventId}'`)).toBe(N);
    report(`limits: ${N} endpoints on one tenant`, {
      "created in (ms), 32 at a time": createMs,
      "listed in (ms)": listMs,
      pages,
      "publish of one event fanning out to all (ms)": publishMs,
      "all delivered after (ms)": deliverMs,
    });
  });
});
