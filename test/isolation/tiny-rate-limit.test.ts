/**
 * A tiny rate limit cannot make the scheduler spin. At 1e-7 requests per
 * second the wait for the next token (1e10 ms) was past what a Node timer
 * holds: the timer fired at once, over and over, with a
 * TimeoutOverflowWarning, about 444 transactions and 850 log lines a second,
 * and it outlived deleting the endpoint. The API now refuses rates below
 * 0.001/s, an endpoint stored with one before is treated as 0.001/s, and
 * every wake-up timer is clamped.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { report } from "../support/chaos.js";
import { client } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { startTestHookline, type TestHookline } from "../support/hookline.js";
import { useReceiver } from "../support/receiver.js";

const warnings: Error[] = [];
const onWarning = (w: Error) => warnings.push(w);

const r = useReceiver();
const db = useTestDatabase();

beforeAll(async () => {
  process.on("warning", onWarning);
});

afterAll(async () => {
  process.off("warning", onWarning);
});

/** Transactions committed in the test database per second, over `ms`. */
async function transactionsPerSecond(ms: number): Promise<number> {
  const read = async () =>
    Number((await db.query<{ n: string }>("SELECT xact_commit AS n FROM pg_stat_database WHERE datname = current_database()"))[0]!.n);
  // pg_stat_database is updated by backends at intervals: force a fresh view.
  await db.query("SELECT pg_stat_clear_snapshot()");
  const before = await read();
  await new Promise((resolve) => setTimeout(resolve, ms));
  await db.query("SELECT pg_stat_clear_snapshot()");
  return ((await read()) - before) / (ms / 1000);
}

describe("rate_limit_per_second", () => {
  let app: TestHookline | undefined;
  afterEach(async () => {
    await app?.stop();
    app = undefined;
  });

  it("is refused below 0.001 with INVALID_ARGUMENT naming the field, and accepted from there", async () => {
    app = await startTestHookline(db.url);
    const admin = client(WebhookAdmin, "connect-http2", app.url);
    for (const rate of [1e-7, 0.0009, -1, Number.NaN]) {
      const err = await admin.createEndpoint({ tenantId: "t", url: `${r.url}/x`, rateLimitPerSecond: rate }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.InvalidArgument);
      expect((err as ConnectError).rawMessage).toContain("rate_limit_per_second");
    }
    const { endpoint } = await admin.createEndpoint({ tenantId: "t", url: `${r.url}/x`, rateLimitPerSecond: 0.001 });
    expect(endpoint!.rateLimitPerSecond).toBe(0.001);
    const update = await admin
      .updateEndpoint({ endpoint: { id: endpoint!.id, rateLimitPerSecond: 1e-7 }, updateMask: { paths: ["rate_limit_per_second"] } })
      .catch((e: unknown) => e);
    expect((update as ConnectError).code).toBe(Code.InvalidArgument);
  });

  it("stored at 1e-7 before the rule, with deliveries pending across a restart, runs at the idle statement rate", async () => {
    app = await startTestHookline(db.url);
    const admin = client(WebhookAdmin, "connect-http2", app.url);
    const { endpoint } = await admin.createEndpoint({ tenantId: "slow", url: `${r.url}/slow`, rateLimitPerSecond: 1 });
    // As stored by an earlier version that allowed it.
    await db.query("UPDATE endpoints SET rate_limit_per_second = 1e-7 WHERE id = $1", [endpoint!.id]);
    await app.stop();
    app = await startTestHookline(db.url);
    const idle = await transactionsPerSecond(2_000);

    const before = r.requests.length;
    const ingest = client(EventIngest, "connect-http2", app.url);
    await ingest.publishBatch({
      events: Array.from({ length: 5 }, () => ({ tenantId: "slow", eventType: "e", payload: { case: "payloadJson" as const, value: "{}" } })),
    });
    // The restart: deliveries pending, a fresh scheduler. (The first process
    // may have sent one with its own lane's token before it stopped; what it
    // sent is in by the time its stop returns.)
    await app.stop();
    const sentBefore = r.requests.length;
    expect(sentBefore - before).toBeLessThanOrEqual(1);
    app = await startTestHookline(db.url);
    // A fresh lane has one token: one delivery goes, then the next would be due in 1,000 s.
    await r.waitFor(sentBefore + 1);
    const limited = await transactionsPerSecond(3_000);
    expect(r.requests.length).toBe(sentBefore + 1);

    await client(WebhookAdmin, "connect-http2", app.url).deleteEndpoint({ id: endpoint!.id });
    const deleted = await transactionsPerSecond(2_000);
    const overflows = warnings.filter((w) => w.name === "TimeoutOverflowWarning").length;
    report("tiny rate limit", { idleTxPerS: idle, limitedTxPerS: limited, afterDeleteTxPerS: deleted, timeoutOverflowWarnings: overflows });
    expect(overflows).toBe(0);
    // The idle rate is the scheduler's poll and heartbeat; a spin was hundreds a second.
    expect(limited).toBeLessThan(idle * 2 + 5);
    expect(deleted).toBeLessThan(idle * 2 + 5);
  });
});
