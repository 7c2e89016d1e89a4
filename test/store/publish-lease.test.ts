/**
 * Leasing at publish (insert-events.ts): the publish statement hands new
 * deliveries straight to the publishing process's scheduler, within the
 * room it has, following the claim's rules; everything else is left due
 * for the claims, and a lease that lapses makes its delivery due again.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { newId } from "../../src/domain/ids.js";
import { claimDue } from "../../src/store/sql/claim-due.js";
import { insertEvents, type NewEvent, type PublishLease } from "../../src/store/sql/insert-events.js";
import { openStore, type Store } from "../../src/store/store.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { IDLE_ROOM } from "../support/lease-room.js";
import { insertEndpoint } from "../support/rows.js";

let db: TestDatabase;
let store: Store;

beforeAll(async () => {
  db = await createTestDatabase();
  store = await openStore(db.url, 2);
});

afterAll(async () => {
  await store?.close();
  await db?.drop();
});

beforeEach(async () => {
  await db.query("TRUNCATE endpoints, events, deliveries, delivery_queue, delivery_updates, idempotency_keys");
});

function lease(overrides: Partial<PublishLease> = {}): PublishLease {
  return { ...IDLE_ROOM, limit: 1_000, ...overrides };
}

function events(n: number, tenantId = "t"): NewEvent[] {
  return Array.from({ length: n }, (_, i) => {
    const body = JSON.stringify({ n: i });
    return { id: newId("event"), tenantId, eventType: "order.created", channels: [], idempotencyKey: null, body, data: body };
  });
}

/** The lease columns of every delivery, by id. */
async function leases(): Promise<Map<string, { lockedBy: string | null; dueInMs: number | null }>> {
  const rows = await db.query<{ id: string; locked_by: string | null; due_in_ms: number | null }>(
    "SELECT delivery_id AS id, locked_by, (extract(epoch FROM due_at - now()) * 1000)::float8 AS due_in_ms FROM delivery_queue",
  );
  return new Map(rows.map((r) => [r.id, { lockedBy: r.locked_by, dueInMs: r.due_in_ms }]));
}

const WINDOW_MS = 86_400_000;

describe("insertEvents with a lease", () => {
  it("inserts the new deliveries leased to the publisher until their timeout plus the margin, ready to send", async () => {
    const endpointId = await insertEndpoint(db);
    await db.query("UPDATE endpoints SET timeout_ms = 2000, headers = '{\"x-a\":\"1\"}' WHERE id = $1", [endpointId]);
    const published = events(3);
    const result = await insertEvents(store.sql, published, WINDOW_MS, lease());
    expect(result.leased).toHaveLength(3);
    // Leased ones are not handed out again to be taken by id.
    expect(result.events.map((e) => e.deliveryIds)).toEqual([[], [], []]);
    expect(result.events.map((e) => e.deliveryCount)).toEqual([1, 1, 1]);
    const first = result.leased.find((d) => d.eventId === published[0]!.id)!;
    expect(first).toMatchObject({
      endpointId,
      tenantId: "t",
      eventType: "order.created",
      attemptNumber: 1,
      body: published[0]!.body,
      url: "http://127.0.0.1:9/hook",
      headers: { "x-a": "1" },
      timeoutMs: 2000,
      probe: false,
      ordered: false,
    });
    const rows = await leases();
    for (const d of result.leased) {
      expect(rows.get(d.id)!.lockedBy).toBe("w1");
      // 2 s timeout + 30 s margin from now.
      expect(rows.get(d.id)!.dueInMs).toBeGreaterThan(31_000);
      expect(rows.get(d.id)!.dueInMs).toBeLessThanOrEqual(32_000);
      expect(Math.abs(d.leaseUntil.getTime() - Date.now() - 32_000)).toBeLessThan(2_000);
    }
    // The lease handed back is the one stored, to the millisecond.
    const stored = await db.query<{ id: string; ms: number }>("SELECT delivery_id AS id, floor(extract(epoch FROM due_at) * 1000)::float8 AS ms FROM delivery_queue");
    expect(new Map(stored.map((r) => [r.id, r.ms]))).toEqual(new Map(result.leased.map((d) => [d.id, d.leaseUntil.getTime()])));
    // Another process's claim finds nothing: they are leased.
    const other = await claimDue(store.sql, { ...lease({ workerId: "w2" }), lookahead: 64 });
    expect(other).toEqual([]);
  });

  it("fans one event out to many endpoints without scanning one of its CTEs once per row of another", async () => {
    // The planner estimates one row for a fan-out: a join of two of its
    // CTEs by id was a nested loop, 1,000 x 1,000 rows (150 ms of 196).
    const endpoints = 300;
    await db.query(
      `INSERT INTO endpoints (id, tenant_id, url, secrets)
       SELECT 'ep_fan' || n, 'f', 'http://127.0.0.1:9/hook', '[{"secret":"whsec_x","expiresAt":null}]' FROM generate_series(1, $1) AS n`,
      [endpoints],
    );
    const plans: unknown[] = [];
    const explaining = {
      query: async <R extends object>(text: string, values?: unknown[]) => {
        const [row] = await store.sql.query<{ "QUERY PLAN": unknown }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values);
        plans.push(row!["QUERY PLAN"]);
        return [] as R[];
      },
    };
    // (Run for real by ANALYZE; the rows the store expects back are not there.)
    await insertEvents(explaining, events(1, "f"), WINDOW_MS, lease({ limit: 100 })).catch(() => {});
    const rescanned: string[] = [];
    const walk = (node: Record<string, unknown>) => {
      if (node["Node Type"] === "CTE Scan" && (node["Actual Loops"] as number) > 1 && (node["Actual Rows"] as number) > 1) {
        rescanned.push(`${node["CTE Name"]} x ${node["Actual Loops"]}`);
      }
      for (const child of (node.Plans as Record<string, unknown>[] | undefined) ?? []) walk(child);
    };
    walk(((plans[0] as { Plan: Record<string, unknown> }[])[0]!).Plan);
    expect(rescanned).toEqual([]);
    expect(await db.query("SELECT count(*)::int AS n FROM delivery_queue")).toEqual([{ n: endpoints }]);
  });

  it("leases no more than the endpoint's room, the tenant's room and the limit; the rest stay due for claims", async () => {
    const a = await insertEndpoint(db);
    const b = await insertEndpoint(db);
    const byRoom = await insertEvents(store.sql, events(5), WINDOW_MS, lease({ laneFree: new Map([[a, 2]]) }));
    const leasedTo = (r: typeof byRoom, endpointId: string) => r.leased.filter((d) => d.endpointId === endpointId).length;
    // a has room for 2; b, with no work here, its share of its limit (100).
    expect(leasedTo(byRoom, a)).toBe(2);
    expect(leasedTo(byRoom, b)).toBe(5);
    const left = byRoom.events.flatMap((e) => e.deliveryIds);
    expect(left).toHaveLength(3);
    const rows = await leases();
    for (const id of left) expect(rows.get(id)).toEqual({ lockedBy: null, dueInMs: expect.any(Number) });
    for (const id of left) expect(rows.get(id)!.dueInMs!).toBeLessThanOrEqual(0);

    const byTenant = await insertEvents(store.sql, events(4), WINDOW_MS, lease({ tenants: new Map([["t", { free: 3, newEndpointFree: 3 }]]) }));
    expect(byTenant.leased).toHaveLength(3);
    const byLimit = await insertEvents(store.sql, events(4), WINDOW_MS, lease({ limit: 5 }));
    expect(byLimit.leased).toHaveLength(5);
    // The earliest events first.
    const order = new Map(byLimit.events.map((e, i) => [e.eventId, i]));
    expect(Math.max(...byLimit.leased.map((d) => order.get(d.eventId)!))).toBeLessThanOrEqual(2);
  });

  it("leases nothing of excluded endpoints and tenants, ordered or rate-limited endpoints, or blocked and half-open circuits", async () => {
    const excluded = await insertEndpoint(db);
    const ordered = await insertEndpoint(db, { ordered: true });
    const limited = await insertEndpoint(db);
    await db.query("UPDATE endpoints SET rate_limit_per_second = 10 WHERE id = $1", [limited]);
    const open = await insertEndpoint(db, { consecutiveFailures: 5, circuitOpenUntil: "now() + interval '1 hour'" });
    const halfOpen = await insertEndpoint(db, { consecutiveFailures: 5, circuitOpenUntil: "now() - interval '1 second'" });
    const healthy = await insertEndpoint(db);
    const otherTenant = await insertEndpoint(db, { tenantId: "u" });
    const result = await insertEvents(store.sql, [...events(1), ...events(1, "u")], WINDOW_MS, lease({ exclude: [excluded], excludeTenants: ["u"] }));
    expect(result.leased.map((d) => d.endpointId)).toEqual([healthy]);
    const created = await db.query<{ endpoint_id: string; locked_by: string | null; due: boolean | null }>(
      "SELECT endpoint_id, locked_by, due_at <= now() AS due FROM delivery_queue",
    );
    const byEndpoint = new Map(created.map((r) => [r.endpoint_id, r]));
    for (const id of [excluded, ordered, limited, halfOpen, otherTenant]) {
      expect(byEndpoint.get(id)).toMatchObject({ locked_by: null, due: true });
    }
    // Held until the cool-down ends, as without a lease.
    expect(byEndpoint.get(open)).toMatchObject({ locked_by: null, due: false });
  });

  it("parks an ordered endpoint's later deliveries as without a lease", async () => {
    const ordered = await insertEndpoint(db, { ordered: true });
    const result = await insertEvents(store.sql, events(3), WINDOW_MS, lease());
    expect(result.leased).toEqual([]);
    const rows = await db.query<{ parked: boolean }>("SELECT due_at IS NULL AS parked FROM delivery_queue WHERE endpoint_id = $1 ORDER BY seq", [ordered]);
    expect(rows.map((r) => r.parked)).toEqual([false, true, true]);
  });

  it("makes a leased delivery due again when its lease lapses, so another process takes it (the publisher died)", async () => {
    await insertEndpoint(db);
    await db.query("UPDATE endpoints SET timeout_ms = 1");
    const result = await insertEvents(store.sql, events(1), WINDOW_MS, lease({ leaseMarginMs: 200 }));
    expect(result.leased).toHaveLength(1);
    let taken: Awaited<ReturnType<typeof claimDue>> = [];
    // Not a fixed sleep: claim until the lease has lapsed.
    while (taken.length === 0) taken = await claimDue(store.sql, { ...lease({ workerId: "w2" }), lookahead: 64 });
    expect(taken.map((d) => d.id)).toEqual([result.leased[0]!.id]);
    expect(taken[0]!.attemptNumber).toBe(1);
  });

  it("without a lease, leaves every new delivery due and hands all their ids back", async () => {
    await insertEndpoint(db);
    await insertEndpoint(db);
    const result = await insertEvents(store.sql, events(2), WINDOW_MS);
    expect(result.leased).toEqual([]);
    expect(result.events.flatMap((e) => e.deliveryIds)).toHaveLength(4);
    const rows = await leases();
    for (const r of rows.values()) expect(r.lockedBy).toBeNull();
  });
});
