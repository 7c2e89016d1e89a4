/**
 * PostgreSQL stops under load and comes back. While it is down, Publish
 * answers Unavailable (never success for an event it did not store), health
 * reports NOT_SERVING and /readyz 503; afterwards everything recovers by
 * itself: health SERVING, the scheduler delivers every accepted event, and a
 * status stream opened before the outage goes on without being reopened.
 *
 * The server is a PostgreSQL of this test's own, stopped and started on the
 * same data directory and port. Short: 3 s down; long (npm run
 * test:chaos): 10 s down under a heavier load.
 */
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as ServingStatus } from "../../gen/grpc/health/v1/health_pb.js";
import { DeliveryStatus } from "../../gen/hookline/v1/delivery_pb.js";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { report, scale, sleep } from "../support/chaos.js";
import { client } from "../support/clients.js";
import { useTestHookline } from "../support/hookline.js";
import { useReceiver } from "../support/receiver.js";
import { useStoppablePostgres } from "../support/postgres-server.js";

const OUTAGE_MS = scale(3_000, 10_000);
const PUBLISH_EVERY_MS = scale(20, 5);

const postgres = useStoppablePostgres(120_000);
const r = useReceiver();
const app = useTestHookline(postgres, {
  HOOKLINE_RETRY_SCHEDULE: "100ms,200ms,500ms,1s,1s,1s,1s,1s,1s,1s",
  HOOKLINE_POLL_INTERVAL: "100ms",
});

it("refuses publishes while PostgreSQL is down, reports it, and loses nothing it accepted", { timeout: 180_000 }, async () => {
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const ingest = client(EventIngest, "grpc", app.url);
  const health = client(Health, "grpc", app.url);
  const status = async () => (await health.check({ service: "hookline.v1.EventIngest" })).status;
  await admin.createEndpoint({ tenantId: "outage", url: `${r.url}/hook` });

  // A watcher opened before the outage, read until the end. It starts from
  // a moment before the first publish: started live, it could miss the
  // first updates if its call reached the server after them.
  const watchAbort = new AbortController();
  const watched = new Set<string>();
  const since = timestampFromDate(new Date(Date.now() - 1_000));
  const watching = (async () => {
    try {
      for await (const u of admin.watchDeliveries({ tenantId: "outage", statuses: [DeliveryStatus.SUCCEEDED], since }, { signal: watchAbort.signal })) {
        watched.add(u.eventId);
      }
    } catch (err) {
      if (ConnectError.from(err).code !== Code.Canceled) throw err;
    }
  })();

  // Publishers: one call every PUBLISH_EVERY_MS, each outcome recorded.
  const accepted = new Set<string>();
  const refused = new Map<string, number>();
  const acceptedDuringOutage: string[] = [];
  let phase = "before" as "before" | "down" | "after";
  let publishing = true;
  let n = 0;
  const publisher = (async () => {
    const calls: Promise<void>[] = [];
    while (publishing) {
      const i = n++;
      const during = phase;
      calls.push(
        ingest.publish({ tenantId: "outage", eventType: "outage.tick", payload: { case: "payloadJson", value: `{"i":${i}}` } }).then(
          (res) => {
            accepted.add(res.eventId);
            if (during === "down") acceptedDuringOutage.push(res.eventId);
          },
          (err: unknown) => {
            const code = Code[ConnectError.from(err).code];
            refused.set(code, (refused.get(code) ?? 0) + 1);
          },
        ),
      );
      await sleep(PUBLISH_EVERY_MS);
    }
    await Promise.all(calls);
  })();

  await sleep(1_000);
  expect(await status()).toBe(ServingStatus.SERVING);
  const acceptedBefore = accepted.size;

  // Down.
  const downAt = performance.now();
  await postgres.stop();
  phase = "down";
  await expect.poll(status, { timeout: 10_000, interval: 100 }).toBe(ServingStatus.NOT_SERVING);
  const notServingAfterMs = Math.round(performance.now() - downAt);
  expect((await fetch(`${app.url}/readyz`)).status).toBe(503);
  expect((await fetch(`${app.url}/healthz`)).status).toBe(200);
  const refusedBeforeRestart = [...refused.values()].reduce((a, b) => a + b, 0);
  await sleep(Math.max(0, OUTAGE_MS - (performance.now() - downAt)));
  const refusedDuringOutage = [...refused.values()].reduce((a, b) => a + b, 0);

  // Up again, on the same directory and port.
  const upAt = performance.now();
  await postgres.start();
  phase = "after";
  await expect.poll(status, { timeout: 15_000, interval: 100 }).toBe(ServingStatus.SERVING);
  const servingAfterMs = Math.round(performance.now() - upAt);
  expect((await fetch(`${app.url}/readyz`)).status).toBe(200);
  // Publishes succeed again.
  const acceptedAtRestart = accepted.size;
  await expect.poll(() => accepted.size, { timeout: 15_000 }).toBeGreaterThan(acceptedAtRestart + 10);
  publishing = false;
  await publisher;

  // Every accepted event is delivered, and the watcher saw each succeed.
  const delivered = () => {
    const seen = new Map<string, number>();
    for (const req of r.requests) {
      const id = (JSON.parse(req.body) as { id?: string }).id ?? req.headers["webhook-id"];
      seen.set(String(id), (seen.get(String(id)) ?? 0) + 1);
    }
    return seen;
  };
  await expect.poll(() => [...accepted].filter((id) => !delivered().has(id)).length, { timeout: 60_000, interval: 250 }).toBe(0);
  await expect.poll(() => [...accepted].filter((id) => !watched.has(id)).length, { timeout: 30_000, interval: 250 }).toBe(0);
  watchAbort.abort();
  await watching;

  const seen = delivered();
  const duplicates = [...seen.values()].reduce((sum, c) => sum + c - 1, 0);
  const failedCodes = [...refused.keys()].filter((c) => c !== "Unavailable");
  report("database outage", {
    "outage (ms)": Math.round(upAt - downAt),
    "publish calls": n,
    accepted: accepted.size,
    "accepted before the outage": acceptedBefore,
    "refused with Unavailable": refused.get("Unavailable") ?? 0,
    "refused with another code": failedCodes.map((c) => `${c}:${refused.get(c)}`).join(" ") || 0,
    "NOT_SERVING after (ms)": notServingAfterMs,
    "SERVING after restart (ms)": servingAfterMs,
    "accepted after the stop returned (PostgreSQL finishing its shutdown; each stored and delivered)": acceptedDuringOutage.length,
    lost: [...accepted].filter((id) => !seen.has(id)).length,
    "delivered twice or more": duplicates,
    "seen SUCCEEDED by the watcher opened before": [...accepted].filter((id) => watched.has(id)).length,
  });
  expect(failedCodes).toEqual([]);
  expect(refusedBeforeRestart).toBeGreaterThan(0);
  expect(refusedDuringOutage).toBeGreaterThan(refusedBeforeRestart - 1);
});
