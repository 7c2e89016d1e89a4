/** GetEndpointStats: counts, success rate, latencies and health over a window, from real deliveries. */
import { Code, ConnectError } from "@connectrpc/connect";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { expect, it } from "vitest";
import { CircuitState } from "../../gen/hookline/v1/endpoint_pb.js";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { useReceiver } from "../support/receiver.js";

const r = useReceiver();
const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_RETRY_SCHEDULE: "none", HOOKLINE_CIRCUIT_FAILURES: "3", HOOKLINE_CIRCUIT_COOLDOWN: "1h" });

it("reports what happened in the window and the endpoint's health", async () => {
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const ingest = client(EventIngest, "connect-http2", app.url);
  const { endpoint } = await admin.createEndpoint({ tenantId: "stats", url: `${r.url}/stats`, maxInFlight: 1 });
  const id = endpoint!.id;
  // Four successes (each taking 20 ms or more), then three failures, which open the circuit.
  let n = 0;
  r.reply(async () => {
    n++;
    if (n <= 4) {
      await new Promise((res) => setTimeout(res, 20));
      return { status: 200 };
    }
    return { status: 503 };
  });
  const publish = (k: number) =>
    ingest.publishBatch({
      events: Array.from({ length: k }, (_, i) => ({ tenantId: "stats", eventType: "t.e", payload: { case: "payloadJson" as const, value: `{"i":${i}}` } })),
    });
  await publish(4);
  await r.waitFor(4);
  await publish(3);
  await r.waitFor(7);
  await expect
    .poll(async () => (await admin.getEndpointStats({ id })).stats!.circuitState, { timeout: 5_000 })
    .toBe(CircuitState.OPEN);
  await publish(2);
  const { stats } = await admin.getEndpointStats({ id });
  expect(stats).toMatchObject({
    endpointId: id,
    succeededCount: 4n,
    failedCount: 3n,
    pendingCount: 2n,
    consecutiveFailures: 3,
    lastError: "HTTP 503",
  });
  expect(stats!.successRate).toBeCloseTo(4 / 7, 5);
  expect(stats!.latencyP50Ms).toBeGreaterThanOrEqual(0);
  expect(stats!.latencyP95Ms).toBeGreaterThanOrEqual(20);
  expect(stats!.circuitOpenUntil).toBeDefined();
  expect(stats!.lastErrorAt).toBeDefined();
  expect(Number(stats!.window!.seconds)).toBe(86_400);
  // A window that ends before any of it counts nothing.
  await new Promise((res) => setTimeout(res, 300));
  const { stats: narrow } = await admin.getEndpointStats({ id, window: durationFromMs(100) });
  expect(narrow).toMatchObject({ succeededCount: 0n, failedCount: 0n, pendingCount: 2n, successRate: 0 });
});

it("names a bad window and answers NotFound for an unknown endpoint", async () => {
  const admin = client(WebhookAdmin, "connect-http2", app.url);
  const code = async (p: Promise<unknown>) => p.then(() => "ok", (e: unknown) => [ConnectError.from(e).code, ConnectError.from(e).rawMessage]);
  const { endpoint } = await admin.createEndpoint({ tenantId: "stats", url: `${r.url}/s2` });
  expect(await code(admin.getEndpointStats({ id: endpoint!.id, window: durationFromMs(0) }))).toEqual([Code.InvalidArgument, expect.stringContaining("window")]);
  expect(await code(admin.getEndpointStats({ id: "ep_nope" }))).toEqual([Code.NotFound, expect.any(String)]);
});
