/**
 * The status stream under stress: a client that stops reading holds up
 * neither delivery nor memory, and gets everything in order once it reads
 * again; a watcher on one process sees what another process did.
 */
import { expect, it } from "vitest";
import { type DeliveryUpdate, DeliveryUpdateKind } from "../../gen/hookline/v1/delivery_pb.js";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { testEnv, useTestHookline } from "../support/hookline.js";
import { type HooklineProcess, spawnHookline } from "../support/process.js";
import { useReceiver } from "../support/receiver.js";

const r = useReceiver(() => ({ status: 200 }));
const db = useTestDatabase();
const app = useTestHookline(db);

it("a client that stops reading stalls neither delivery nor memory, and later gets every update in order", async () => {
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const ingest = client(EventIngest, "connect-http2", app.url);
  await admin.createEndpoint({ tenantId: "slow", url: `${r.url}/slow`, maxInFlight: 32 });
  const abort = new AbortController();
  const stream = admin.watchDeliveries({ tenantId: "slow" }, { signal: abort.signal })[Symbol.asyncIterator]();
  await expect.poll(() => app.updates.watcherCount).toBe(1);
  const events = 1_500;
  for (let i = 0; i < events; i += 500) {
    await ingest.publishBatch({
      events: Array.from({ length: 500 }, (_, j) => ({
        tenantId: "slow",
        eventType: "t.e",
        payload: { case: "payloadJson" as const, value: `{"i":${i + j},"pad":"${"x".repeat(300)}"}` },
      })),
    });
  }
  // Nobody reads the stream, yet every delivery goes out...
  await r.waitFor(events, 60_000);
  await expect
    .poll(async () => Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM deliveries WHERE status = 3"))[0]!.n), {
      timeout: 20_000,
    })
    .toBe(events);
  // ...and the watcher holds a bounded queue, not everything.
  expect(app.updates.maxQueued).toBeLessThanOrEqual(512);
  // Reading again, it gets all of it: no gap, no repeat, in log order.
  const got: DeliveryUpdate[] = [];
  while (got.length < 2 * events) {
    const next = await stream.next();
    if (next.done) break;
    got.push(next.value);
  }
  abort.abort();
  expect(got.length).toBe(2 * events);
  expect(new Set(got.map((u) => u.cursor)).size).toBe(2 * events);
  expect(got.filter((u) => u.kind === DeliveryUpdateKind.CREATED).length).toBe(events);
  expect(got.filter((u) => u.kind === DeliveryUpdateKind.SUCCEEDED).length).toBe(events);
  const key = (c: string) => c.split("-").map(BigInt) as [bigint, bigint];
  for (let i = 1; i < got.length; i++) {
    const [a, b] = [key(got[i - 1]!.cursor), key(got[i]!.cursor)];
    expect(a[0] < b[0] || (a[0] === b[0] && a[1] < b[1])).toBe(true);
  }
  // Each delivery's CREATED comes before its SUCCEEDED.
  const createdAt = new Map<string, number>();
  got.forEach((u, i) => {
    if (u.kind === DeliveryUpdateKind.CREATED) createdAt.set(u.deliveryId, i);
    else expect(createdAt.get(u.deliveryId)).toBeLessThan(i);
  });
}, 120_000);

it("a watcher on one process sees deliveries another process made", async () => {
  let other: HooklineProcess | undefined;
  try {
    other = await spawnHookline(testEnv(db.url, { HOOKLINE_LOG_LEVEL: "info" }));
    const admin = client(WebhookAdmin, "connect-http2", app.url);
    const abort = new AbortController();
    const got: DeliveryUpdate[] = [];
    const watching = (async () => {
      try {
        for await (const u of admin.watchDeliveries({ tenantId: "remote" }, { signal: abort.signal })) got.push(u);
      } catch {
        // cancelled
      }
    })();
    await expect.poll(() => app.updates.watcherCount).toBe(1);
    // Made on the other process: endpoint, publish, and (its scheduler or ours) the delivery.
    const otherAdmin = client(WebhookAdmin, "grpc", other.url);
    const otherIngest = client(EventIngest, "grpc", other.url);
    await otherAdmin.createEndpoint({ tenantId: "remote", url: `${r.url}/remote` });
    const { eventId } = await otherIngest.publish({ tenantId: "remote", eventType: "t.e", payload: { case: "payloadJson", value: "{}" } });
    await expect.poll(() => got.length, { timeout: 10_000 }).toBe(2);
    expect(got.map((u) => [u.eventId, DeliveryUpdateKind[u.kind]])).toEqual([
      [eventId, "CREATED"],
      [eventId, "SUCCEEDED"],
    ]);
    abort.abort();
    await watching;
  } finally {
    await other?.kill();
  }
}, 60_000);
