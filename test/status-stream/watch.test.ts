/**
 * WatchDeliveries against a real Hookline: the full sequence of a delivery
 * that fails twice then succeeds, resuming after a cursor with no gap and no
 * repeat, replay from a time, many watchers with different filters, a
 * client that stops reading, every protocol, cancellation and bad input.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { type DeliveryUpdate, DeliveryStatus, DeliveryUpdateKind } from "../../gen/hookline/v1/delivery_pb.js";
import { EventIngest } from "../../gen/hookline/v1/event_ingest_pb.js";
import { WebhookAdmin, type WatchDeliveriesRequest } from "../../gen/hookline/v1/webhook_admin_pb.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { WatchDeliveriesRequestSchema } from "../../gen/hookline/v1/webhook_admin_pb.js";
import { client, type Protocol, PROTOCOLS } from "../support/clients.js";
import { useTestDatabase } from "../support/database.js";
import { useTestHookline } from "../support/hookline.js";
import { useReceiver } from "../support/receiver.js";

const admin = (p: Protocol = "connect-http2") => client(WebhookAdmin, p, app.url);
const ingest = () => client(EventIngest, "connect-http2", app.url);

const r = useReceiver();
const db = useTestDatabase();
const app = useTestHookline(db, { HOOKLINE_RETRY_SCHEDULE: "50ms,50ms,50ms,50ms", HOOKLINE_RETRY_JITTER: "0" });

type WatchInit = Exclude<MessageInitShape<typeof WatchDeliveriesRequestSchema>, WatchDeliveriesRequest>;

/** A running watch that collects what it receives. */
interface Watch {
  updates: DeliveryUpdate[];
  /** Resolves once `n` updates arrived (rejects after `ms`). */
  until(n: number, ms?: number): Promise<void>;
  cancel(): Promise<void>;
}

function watch(req: WatchInit, protocol: Protocol = "connect-http2"): Watch {
  const abort = new AbortController();
  const updates: DeliveryUpdate[] = [];
  let notify = () => {};
  const done = (async () => {
    try {
      for await (const u of admin(protocol).watchDeliveries(req, { signal: abort.signal })) {
        updates.push(u);
        notify();
      }
    } catch (err) {
      if (!abort.signal.aborted) throw err;
    }
  })();
  return {
    updates,
    async until(n, ms = 10_000) {
      const deadline = Date.now() + ms;
      while (updates.length < n) {
        if (Date.now() > deadline) throw new Error(`got ${updates.length} of ${n} updates: ${JSON.stringify(updates.map(brief))}`);
        await new Promise<void>((resolve) => {
          notify = resolve;
          setTimeout(resolve, 50);
        });
      }
    },
    async cancel() {
      abort.abort();
      await done;
    },
  };
}

function brief(u: DeliveryUpdate) {
  return { kind: DeliveryUpdateKind[u.kind], status: DeliveryStatus[u.status], attempt: u.attemptNumber, http: u.responseStatus };
}

async function endpoint(tenantId: string, options: { eventTypes?: string[] } = {}) {
  const { endpoint } = await admin().createEndpoint({ tenantId, url: `${r.url}/${tenantId}`, ...options });
  return endpoint!;
}

async function publish(tenantId: string, eventType = "t.e", n = 1): Promise<string[]> {
  const { results } = await ingest().publishBatch({
    events: Array.from({ length: n }, (_, i) => ({ tenantId, eventType, payload: { case: "payloadJson" as const, value: `{"i":${i}}` } })),
  });
  return results.map((x) => x.eventId);
}

/** Cursors must grow strictly; compare them as (xid, seq). */
function cursorKey(c: string): [bigint, bigint] {
  const [x, s] = c.split("-");
  return [BigInt(x!), BigInt(s!)];
}
function expectIncreasing(updates: readonly DeliveryUpdate[]): void {
  for (let i = 1; i < updates.length; i++) {
    const [a, b] = [cursorKey(updates[i - 1]!.cursor), cursorKey(updates[i]!.cursor)];
    expect(a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]), `cursor ${i} grows`).toBe(true);
  }
}

describe("a delivery that fails twice, then succeeds", () => {
  it("is seen in order: created, two retries with their status and next attempt, succeeded", async () => {
    const calls = new Map<string, number>();
    r.reply((_, req) => {
      const n = (calls.get(req.path) ?? 0) + 1;
      calls.set(req.path, n);
      return req.path === "/seq" && n <= 2 ? { status: 500 } : { status: 200 };
    });
    const ep = await endpoint("seq");
    const w = watch({ tenantId: "seq" });
    await new Promise((res) => setTimeout(res, 100));
    const [eventId] = await publish("seq");
    await w.until(4);
    await w.cancel();
    expect(w.updates.map(brief)).toEqual([
      { kind: "CREATED", status: "PENDING", attempt: 0, http: 0 },
      { kind: "RETRY_SCHEDULED", status: "RETRYING", attempt: 1, http: 500 },
      { kind: "RETRY_SCHEDULED", status: "RETRYING", attempt: 2, http: 500 },
      { kind: "SUCCEEDED", status: "SUCCEEDED", attempt: 3, http: 200 },
    ]);
    for (const u of w.updates) expect(u).toMatchObject({ eventId, endpointId: ep.id, tenantId: "seq", eventType: "t.e" });
    expect(w.updates[1]!.nextAttemptAt).toBeDefined();
    expect(w.updates[1]!.error).toMatch(/500/);
    expect(w.updates[3]!.nextAttemptAt).toBeUndefined();
    expectIncreasing(w.updates);
  });
});

describe("resuming", () => {
  it("after the last cursor received gets exactly the updates missed, none twice", async () => {
    r.reply(() => ({ status: 200 }));
    await endpoint("resume");
    const full = watch({ tenantId: "resume" });
    const first = watch({ tenantId: "resume" });
    await new Promise((res) => setTimeout(res, 100));
    await publish("resume", "t.e", 5);
    await first.until(3);
    await first.cancel();
    const seen = first.updates.slice();
    // More happens while it is away.
    await publish("resume", "t.e", 5);
    await full.until(20);
    const resumed = watch({ tenantId: "resume", afterCursor: seen.at(-1)!.cursor });
    await resumed.until(20 - seen.length);
    await new Promise((res) => setTimeout(res, 300));
    await resumed.cancel();
    await full.cancel();
    expect([...seen, ...resumed.updates].map((u) => u.cursor)).toEqual(full.updates.map((u) => u.cursor));
  });

  it("from a time replays what happened since, then goes on live", async () => {
    r.reply(() => ({ status: 200 }));
    await endpoint("since");
    const before = new Date(Date.now() - 1);
    const [eventId] = await publish("since");
    await new Promise((res) => setTimeout(res, 300));
    const w = watch({ tenantId: "since", since: timestampFromDate(before) });
    await w.until(2);
    expect(w.updates.map((u) => [u.eventId, DeliveryUpdateKind[u.kind]])).toEqual([
      [eventId, "CREATED"],
      [eventId, "SUCCEEDED"],
    ]);
    const [second] = await publish("since");
    await w.until(4);
    await w.cancel();
    expect(w.updates.slice(2).map((u) => u.eventId)).toEqual([second, second]);
  });

  it("without a cursor starts live: nothing from before", async () => {
    r.reply(() => ({ status: 200 }));
    await endpoint("live");
    await publish("live");
    await new Promise((res) => setTimeout(res, 300));
    const w = watch({ tenantId: "live" });
    await new Promise((res) => setTimeout(res, 300));
    const [later] = await publish("live");
    await w.until(2);
    await w.cancel();
    expect(w.updates.map((u) => u.eventId)).toEqual([later, later]);
  });
});

describe("a publisher waiting for its own event", () => {
  it("publishes, then watches by event_id from just before the publish, until the outcome", async () => {
    r.reply(() => ({ status: 200 }));
    await endpoint("own");
    await endpoint("own");
    const before = new Date(Date.now() - 1);
    const [eventId] = await publish("own");
    const w = watch({ eventId, since: timestampFromDate(before), statuses: [DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED] });
    await w.until(2);
    await w.cancel();
    expect(w.updates.map((u) => [u.eventId, DeliveryStatus[u.status]])).toEqual([
      [eventId, "SUCCEEDED"],
      [eventId, "SUCCEEDED"],
    ]);
    expect(new Set(w.updates.map((u) => u.deliveryId)).size).toBe(2);
  });
});

describe("50 watchers with different filters", () => {
  it("each receive exactly the updates that match, in log order", async () => {
    r.reply((_, req) => (req.path.startsWith("/many-b") ? { status: 410 } : { status: 200 }));
    const eps = [await endpoint("many-a"), await endpoint("many-a", { eventTypes: ["invoice.*"] }), await endpoint("many-b")];
    const filters: WatchInit[] = [];
    const types = ["invoice.paid", "invoice.void", "user.created"];
    for (let i = 0; i < 50; i++) {
      const f: WatchInit = {};
      if (i % 2 === 0) f.tenantId = i % 4 === 0 ? "many-a" : "many-b";
      if (i % 3 === 0) f.endpointId = eps[i % eps.length]!.id;
      if (i % 5 === 0) f.eventTypes = [types[i % types.length]!];
      if (i % 7 === 0) f.eventTypes = ["invoice.*"];
      if (i % 4 === 1) f.statuses = [i % 8 === 1 ? DeliveryStatus.SUCCEEDED : DeliveryStatus.FAILED];
      filters.push(f);
    }
    const everything = watch({});
    const watchers = filters.map((f) => watch(f));
    await new Promise((res) => setTimeout(res, 200));
    for (const t of types) await publish("many-a", t, 3);
    // many-b in one batch, so all six deliveries exist before the 410 disables
    // the endpoint (each ends FAILED or, if still waiting then, ENDPOINT_DISABLED).
    await ingest().publishBatch({
      events: types.flatMap((t) => [0, 1].map((i) => ({ tenantId: "many-b", eventType: t, payload: { case: "payloadJson" as const, value: `{"i":${i}}` } }))),
    });
    // many-a: 9 events to ep0, 6 invoice.* to ep1; many-b: 6 to ep2. Two updates each.
    await everything.until(2 * (9 + 6 + 6));
    await new Promise((res) => setTimeout(res, 500));
    const all = everything.updates.filter((u) => u.tenantId.startsWith("many-"));
    expect(all.length).toBe(2 * 21);
    for (const [i, f] of filters.entries()) {
      const expected = all.filter(
        (u) =>
          (!f.tenantId || u.tenantId === f.tenantId) &&
          (!f.endpointId || u.endpointId === f.endpointId) &&
          (!f.eventTypes || f.eventTypes.some((t) => (t.endsWith(".*") ? u.eventType.startsWith(t.slice(0, -1)) : u.eventType === t))) &&
          (!f.statuses || f.statuses.includes(u.status)),
      );
      expect(watchers[i]!.updates.map((u) => u.cursor), `watcher ${i} ${JSON.stringify(f)}`).toEqual(expected.map((u) => u.cursor));
    }
    for (const w of [everything, ...watchers]) await w.cancel();
    const failed = all.filter((u) => u.kind === DeliveryUpdateKind.FAILED);
    const disabled = all.filter((u) => u.kind === DeliveryUpdateKind.ENDPOINT_DISABLED);
    expect(failed.length).toBeGreaterThanOrEqual(1);
    expect(failed.every((u) => u.responseStatus === 410)).toBe(true);
    expect(failed.length + disabled.length).toBe(6);
  });
});

describe("every protocol", () => {
  it.each(PROTOCOLS)("streams over %s and stops when the client cancels", async (protocol) => {
    r.reply(() => ({ status: 200 }));
    const tenant = `proto-${protocol}`;
    await endpoint(tenant);
    const before = app.updates.watcherCount;
    const w = watch({ tenantId: tenant }, protocol);
    await expect.poll(() => app.updates.watcherCount).toBe(before + 1);
    const [eventId] = await publish(tenant);
    await w.until(2);
    expect(w.updates.map((u) => [u.eventId, DeliveryUpdateKind[u.kind]])).toEqual([
      [eventId, "CREATED"],
      [eventId, "SUCCEEDED"],
    ]);
    await w.cancel();
    await expect.poll(() => app.updates.watcherCount).toBe(before);
  });
});

describe("bad requests", () => {
  async function code(req: WatchInit): Promise<[Code, string]> {
    try {
      for await (const _ of admin().watchDeliveries(req)) break;
    } catch (err) {
      const e = ConnectError.from(err);
      return [e.code, e.rawMessage];
    }
    throw new Error("no error");
  }
  it("names the field", async () => {
    expect(await code({ afterCursor: "nope" })).toEqual([Code.InvalidArgument, expect.stringContaining("after_cursor")]);
    expect(await code({ statuses: [9 as DeliveryStatus] })).toEqual([Code.InvalidArgument, expect.stringContaining("statuses[0]")]);
    expect(await code({ eventTypes: ["a*b"] })).toEqual([Code.InvalidArgument, expect.stringContaining("event_types[0]")]);
    expect(await code({ afterCursor: "1-1", since: timestampFromDate(new Date()) })).toEqual([
      Code.InvalidArgument,
      expect.stringContaining("since"),
    ]);
    expect(await code({ tenantId: "bad tenant" })).toEqual([Code.InvalidArgument, expect.stringContaining("tenant_id")]);
  });
});
