/**
 * Several Hookline processes on one database, as real processes: they share
 * the work without delivering anything twice, a publish on one wakes the
 * scheduler of another at once (LISTEN/NOTIFY, not polling), and a process
 * killed mid-delivery loses nothing.
 */
import { afterAll, describe, expect, it } from "vitest";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { LIVE_STATES } from "../../src/store/sql/states.js";
import { client } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { testEnv } from "../support/hookline.js";
import { type HooklineProcess, spawnHookline } from "../support/process.js";
import { type Receiver, startReceiver } from "../support/receiver.js";

const procs: HooklineProcess[] = [];
const receivers: Receiver[] = [];

const db = useTestDatabase();

afterAll(async () => {
  for (const p of procs) await p.kill("SIGKILL");
  for (const r of receivers) await r.close();
});

async function spawn(env: Record<string, string> = {}) {
  const p = await spawnHookline(testEnv(db.url, env));
  procs.push(p);
  return p;
}

async function receiver() {
  const r = await startReceiver();
  receivers.push(r);
  return r;
}

async function publishMany(url: string, tenantId: string, n: number) {
  const ingest = client(EventIngest, "grpc", url);
  for (let start = 0; start < n; start += 1_000) {
    const size = Math.min(1_000, n - start);
    await ingest.publishBatch({
      events: Array.from({ length: size }, (_, i) => ({
        tenantId,
        eventType: "load.e",
        payload: { case: "payloadJson" as const, value: `{"i":${start + i}}` },
      })),
    });
  }
}

function countById(r: Receiver) {
  const counts = new Map<string, number>();
  for (const q of r.requests) {
    const id = String(q.headers["webhook-id"]);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

describe("two processes on one database", () => {
  it("deliver 5,000 events between them, each exactly once", async () => {
    const a = await spawn({ HOOKLINE_LOG_LEVEL: "debug" });
    const b = await spawn({ HOOKLINE_LOG_LEVEL: "debug" });
    const r = await receiver();
    await client(WebhookAdmin, "grpc", a.url).createEndpoint({ tenantId: "pair", url: `${r.url}/pair`, maxInFlight: 100 });
    await publishMany(a.url, "pair", 5_000);
    await r.waitFor(5_000, 60_000);
    await r.quiet();
    const counts = countById(r);
    expect(counts.size).toBe(5_000);
    expect(r.requests).toHaveLength(5_000);
    // Both did part of the work.
    const delivered = (p: HooklineProcess) => p.logs.filter((l) => l.msg === "attempt succeeded").length;
    expect(delivered(a) + delivered(b)).toBe(5_000);
    expect(delivered(a)).toBeGreaterThan(250);
    expect(delivered(b)).toBeGreaterThan(250);
    expect(r.concurrency.max).toBeLessThanOrEqual(100);
  }, 120_000);

  it("wake each other: an API-only process's publish reaches a scheduler-only process at once", async () => {
    const api = await spawn({ HOOKLINE_SCHEDULER: "false" });
    const worker = await spawn({ HOOKLINE_API: "false", HOOKLINE_POLL_INTERVAL: "1h" });
    expect(worker.url).toBe("");
    const r = await receiver();
    await client(WebhookAdmin, "grpc", api.url).createEndpoint({ tenantId: "notify", url: `${r.url}/notify` });
    const before = Date.now();
    await client(EventIngest, "grpc", api.url).publish({
      tenantId: "notify",
      eventType: "n.e",
      payload: { case: "payloadJson", value: "{}" },
    });
    await r.waitFor(1, 5_000);
    expect(r.requests[0]!.at - before).toBeLessThan(1_000);
  }, 60_000);
});

describe("a process killed with SIGKILL in the middle of delivering 2,000 events", () => {
  it("loses none: another process delivers the rest once the leases expire, with duplicates at most twice the in-flight limit", async () => {
    const limit = 20;
    // Short leases, so the test need not wait long for the killed process's
    // to run out; not the shortest allowed (1s), which leaves a claimed row
    // only 0.5 s to start, too little when test files run side by side.
    const env = { HOOKLINE_REQUEST_TIMEOUT: "2s", HOOKLINE_LEASE_MARGIN: "3s", HOOKLINE_MAX_IN_FLIGHT: String(limit) };
    const first = await spawn(env);
    const r = await receiver();
    r.reply(async () => {
      await new Promise((res) => setTimeout(res, 5));
      return { status: 200 };
    });
    await client(WebhookAdmin, "grpc", first.url).createEndpoint({
      tenantId: "crash",
      url: `${r.url}/crash`,
      maxInFlight: limit,
    });
    await publishMany(first.url, "crash", 2_000);
    await r.waitFor(500, 60_000);
    expect(await first.kill("SIGKILL")).toBe(null);
    const atKill = r.requests.length;
    expect(atKill).toBeLessThan(2_000);

    await spawn(env);
    await r.waitFor(2_000, 60_000);
    await expect.poll(() => countById(r).size, { timeout: 60_000 }).toBe(2_000);
    // Every id has reached the receiver, but what the killed process had in
    // flight (or had sent and not yet recorded) is still leased to it: those
    // rows end only once their leases run out and the new process sends them
    // again. Their ending is the event to wait for, not a quiet receiver.
    const pending = () => db.query(`SELECT id FROM deliveries WHERE status IN ${LIVE_STATES}`);
    await expect.poll(pending, { timeout: 60_000 }).toEqual([]);
    await r.quiet();
    // Sent twice: what was in flight at the kill, and what had been answered
    // but not yet stored; the scheduler keeps both together under 2 x its
    // HOOKLINE_MAX_IN_FLIGHT.
    const duplicates = r.requests.length - 2_000;
    expect(duplicates).toBeGreaterThanOrEqual(0);
    expect(duplicates).toBeLessThanOrEqual(2 * limit);
    expect(await pending()).toEqual([]);
  }, 120_000);
});
