/**
 * A tenant's watchers that never read cannot exhaust the process: many
 * WatchDeliveries streams whose connections stop reading (a TCP proxy that
 * stops forwarding Hookline's bytes, with HTTP/2 windows of 16 MiB so
 * Hookline may send all it likes), half of them replaying from a time,
 * while events are published steadily. The memory Hookline keeps (its heap
 * after a full collection; it runs in this process) grows by less than the
 * bound docs/status-stream.md gives, readiness holds, and once every
 * connection is reset the watcher gauge returns to 0.
 */
import http2 from "node:http2";
import net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WatchDeliveriesRequestSchema, WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { report, scale, sleep } from "../support/chaos.js";
import { client } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { startTestHookline, useTestHookline } from "../support/hookline.js";
import { heapUsedAfterGc } from "../support/memory.js";
import { scrapeMetrics } from "../support/metrics.js";
import { envelope } from "../support/raw-http.js";
import { useReceiver } from "../support/receiver.js";

const MiB = 2 ** 20;
/** Watchers opened (half live, half replaying); at most 200 per HTTP/2 connection (the server allows 256). */
const WATCHERS = scale(300, 2_000);
const PER_CONNECTION = 200;
/** The bound under test, smaller than the default so that it matters at this scale. */
const BUFFER_BYTES = 8 * MiB;
/**
 * The documented bound (docs/status-stream.md): HOOKLINE_WATCH_BUFFER_BYTES
 * for the updates held, plus 100 KB per open stream (its HTTP/2 stream,
 * request and pipeline, its few unsent messages, and here the test's own
 * client side of it, which lives in the same heap).
 */
const HEAP_BOUND = BUFFER_BYTES + WATCHERS * 100 * 1024;
/** Events published while the watchers do not read: batches of 100 every 100 ms. */
const PUBLISH_ROUNDS = scale(60, 150);

const receiver = useReceiver(() => ({ status: 200 }));
const db = useTestDatabase();
const hookline = useTestHookline(db, { HOOKLINE_WATCH_BUFFER_BYTES: String(BUFFER_BYTES), HOOKLINE_DB_POOL_SIZE: "10" });

/** A TCP proxy to Hookline whose connections can stop forwarding Hookline's bytes, or be reset. */
async function stallingProxy(target: string) {
  const port = Number(new URL(target).port);
  const pairs: Array<{ client: net.Socket; upstream: net.Socket }> = [];
  const server = net.createServer((clientSide) => {
    const upstream = net.connect(port, "127.0.0.1");
    clientSide.on("error", () => {});
    upstream.on("error", () => {});
    clientSide.pipe(upstream);
    upstream.pipe(clientSide);
    pairs.push({ client: clientSide, upstream });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    /** From now on, Hookline's bytes stay in its socket buffers: its clients "never read". */
    stall() {
      for (const { upstream } of pairs) {
        upstream.unpipe();
        upstream.pause();
      }
    },
    /** Resets every connection (TCP RST to Hookline). */
    reset() {
      for (const { client, upstream } of pairs) {
        client.resetAndDestroy();
        upstream.resetAndDestroy();
      }
      server.close();
    },
  };
}

async function figures() {
  const m = await scrapeMetrics(hookline.url);
  return {
    rss: m.get("process_resident_memory_bytes")!,
    watchers: m.get("hookline_status_watchers")!,
    buffered: m.get("hookline_status_buffer_bytes") ?? 0,
  };
}

async function ready(): Promise<boolean> {
  try {
    return (await fetch(`${hookline.url}/readyz`, { signal: AbortSignal.timeout(5_000) })).status === 200;
  } catch {
    return false;
  }
}

it(`${WATCHERS} watchers that never read: bounded memory, readiness holds, and the gauge is back to 0 after their connections reset`, async () => {
  const admin = client(WebhookAdmin, "connect-http2", hookline.url);
  const ingest = client(EventIngest, "connect-http2", hookline.url);
  await admin.createEndpoint({ tenantId: "noisy", url: `${receiver.url}/noisy`, maxInFlight: 64 });
  const publish = (n: number) =>
    ingest.publishBatch({
      events: Array.from({ length: n }, (_, i) => ({ tenantId: "noisy", eventType: "t.e", payload: { case: "payloadJson" as const, value: `{"i":${i}}` } })),
    });
  // History for the replaying watchers: 2,000 events, 4,000 updates.
  const since = new Date(Date.now() - 5_000);
  for (let i = 0; i < 4; i++) await publish(500);
  await receiver.waitFor(2_000, 60_000);
  // Warmed up by a first round of the steady stream, without watchers.
  for (let round = 0; round < 20; round++) {
    await publish(100);
    await sleep(100);
  }
  const before = await figures();
  const heapBefore = heapUsedAfterGc();

  const proxy = await stallingProxy(hookline.url);
  const sessions: http2.ClientHttp2Session[] = [];
  const live = envelope(0, toBinary(WatchDeliveriesRequestSchema, create(WatchDeliveriesRequestSchema, { tenantId: "noisy" })));
  const replay = envelope(
    0,
    toBinary(WatchDeliveriesRequestSchema, create(WatchDeliveriesRequestSchema, { tenantId: "noisy", since: timestampFromDate(since) })),
  );
  for (let i = 0; i < WATCHERS; i++) {
    if (i % PER_CONNECTION === 0) {
      // Windows as large as a client may make them: Hookline may send as much as it likes.
      const session = http2.connect(proxy.url, { settings: { initialWindowSize: MiB } });
      session.on("connect", () => session.setLocalWindowSize(16 * MiB));
      session.on("error", () => {});
      sessions.push(session);
    }
    const stream = sessions.at(-1)!.request({
      ":method": "POST",
      ":path": "/hookline.v1.WebhookAdmin/WatchDeliveries",
      "content-type": "application/grpc",
      te: "trailers",
    });
    stream.on("error", () => {});
    stream.end(i % 2 === 0 ? live : replay);
  }
  await expect.poll(async () => (await figures()).watchers, { timeout: 60_000, interval: 250 }).toBe(WATCHERS);
  proxy.stall();

  // A steady stream of events while nobody reads.
  let peak = before.rss;
  let peakBuffered = 0;
  let notReady = 0;
  for (let round = 0; round < PUBLISH_ROUNDS; round++) {
    await publish(100);
    await sleep(100);
    if (round % 5 === 4) {
      const f = await figures();
      peak = Math.max(peak, f.rss);
      peakBuffered = Math.max(peakBuffered, f.buffered);
      if (!(await ready())) notReady++;
    }
  }
  const heapDuring = heapUsedAfterGc();
  const during = await figures();
  peak = Math.max(peak, during.rss);
  expect(during.watchers).toBe(WATCHERS);

  proxy.reset();
  const resetAt = Date.now();
  // A deadline, not a sleep: each watcher must leave once Hookline sees its connection reset.
  const deadline = resetAt + scale(20_000, 60_000);
  let left = WATCHERS;
  while (Date.now() < deadline) {
    left = (await figures()).watchers;
    if (left === 0) break;
    await sleep(200);
  }
  const goneMs = Date.now() - resetAt;
  for (const s of sessions) s.destroy();

  report("watchers that never read", {
    watchers: WATCHERS,
    "events published meanwhile": PUBLISH_ROUNDS * 100,
    "HOOKLINE_WATCH_BUFFER_BYTES (MiB)": BUFFER_BYTES / MiB,
    "heap kept before (MiB)": Math.round(heapBefore / MiB),
    "heap kept with the watchers (MiB)": Math.round(heapDuring / MiB),
    "heap growth (MiB)": Math.round((heapDuring - heapBefore) / MiB),
    "documented bound (MiB)": Math.round(HEAP_BOUND / MiB),
    "RSS before (MiB)": Math.round(before.rss / MiB),
    "RSS peak (MiB)": Math.round(peak / MiB),
    "peak of hookline_status_buffer_bytes (MiB)": Math.round(peakBuffered / MiB),
    "readiness checks failed": notReady,
    "watchers left after the reset": left,
    "gauge at 0 after the reset (ms)": left === 0 ? goneMs : "never, within the deadline",
  });
  expect(left).toBe(0);
  expect(peakBuffered).toBeLessThanOrEqual(BUFFER_BYTES + (WATCHERS / 2) * 16 * 1024);
  expect(heapDuring - heapBefore).toBeLessThan(HEAP_BOUND);
  expect(notReady).toBe(0);
  expect(await ready()).toBe(true);
}, 300_000);

it("watchers over the bound give up their queues and, reading again, still get every update once, in order", async () => {
  // A second process on the same database, with the smallest bound: 64 updates in all.
  const tight = await startTestHookline(db.url, { HOOKLINE_WATCH_BUFFER_BYTES: "65536" });
  try {
    const admin = client(WebhookAdmin, "connect-http2", tight.url);
    const ingest = client(EventIngest, "connect-http2", tight.url);
    await admin.createEndpoint({ tenantId: "shed", url: `${receiver.url}/shed`, maxInFlight: 32 });
    const abort = new AbortController();
    const since = timestampFromDate(new Date(Date.now() - 1_000));
    // Two live, one replaying; none reads until the end.
    const streams = [{}, {}, { since }].map((start) =>
      admin.watchDeliveries({ tenantId: "shed", ...start }, { signal: abort.signal })[Symbol.asyncIterator](),
    );
    await expect.poll(() => tight.updates.watcherCount).toBe(3);
    const events = 600;
    let most = 0;
    for (let i = 0; i < events; i += 100) {
      await ingest.publishBatch({
        events: Array.from({ length: 100 }, (_, j) => ({ tenantId: "shed", eventType: "t.e", payload: { case: "payloadJson" as const, value: `{"i":${i + j}}` } })),
      });
      most = Math.max(most, tight.updates.bufferedBytes);
    }
    await expect
      .poll(async () => Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM deliveries WHERE tenant_id = 'shed' AND status = 3"))[0]!.n), {
        timeout: 30_000,
      })
      .toBe(events);
    most = Math.max(most, tight.updates.bufferedBytes);
    // The bound, plus at most one small page (16 updates) for each watcher catching up.
    expect(most).toBeLessThanOrEqual(65_536 + 3 * 16 * 1_040);
    for (const stream of streams) {
      const got: string[] = [];
      while (got.length < 2 * events) {
        const next = await stream.next();
        if (next.done) break;
        got.push(next.value.cursor);
      }
      expect(got.length).toBe(2 * events);
      expect(new Set(got).size).toBe(2 * events);
      const key = (c: string) => c.split("-").map(BigInt) as [bigint, bigint];
      for (let i = 1; i < got.length; i++) {
        const [a, b] = [key(got[i - 1]!), key(got[i]!)];
        expect(a[0] < b[0] || (a[0] === b[0] && a[1] < b[1])).toBe(true);
      }
    }
    abort.abort();
    await expect.poll(() => tight.updates.watcherCount).toBe(0);
  } finally {
    await tight.stop();
  }
}, 120_000);
