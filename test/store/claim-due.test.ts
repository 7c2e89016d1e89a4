/**
 * The claim statement against PostgreSQL: which due rows it takes, and
 * which it must leave out of its window so that they cannot hide others'.
 */
import { describe, expect, it } from "vitest";
import { type ClaimRequest, claim, claimDue } from "../../src/store/sql/claim-due.js";
import { insertDeliveries, insertEndpoint, readEndpointHealth } from "../support/rows.js";
import type { Sql } from "../../src/store/sql.js";
import { IDLE_ROOM } from "../support/lease-room.js";
import { useTestStore } from "../support/store.js";

const { db, sql } = useTestStore();

function request(overrides: Partial<ClaimRequest> = {}): ClaimRequest {
  return { ...IDLE_ROOM, limit: 64, lookahead: 32, ...overrides };
}

/** The plan of each statement `run` sends, which is explained instead of run. */
async function plansOf(run: (explaining: Sql) => Promise<unknown>): Promise<string[]> {
  const plans: string[] = [];
  await run({
    query: async (text, values) => {
      const rows = await sql.query<{ "QUERY PLAN": string }>(`EXPLAIN ${text}`, values);
      plans.push(rows.map((r) => r["QUERY PLAN"]).join("\n"));
      return [] as never;
    },
  });
  return plans;
}

describe("claimDue", () => {
  it("leaves excluded endpoints (at capacity, or blocked) out of its window: their due rows cannot hide another endpoint's", async () => {
    // Rows that became due while their circuit was open (a publish racing the opening), ahead of everything.
    const open = await insertEndpoint(db, { consecutiveFailures: 5, circuitOpenUntil: "now() + interval '1 hour'" });
    await insertDeliveries(db, open, 200, { nextAttemptAt: "now() - interval '1 minute'" });
    const healthy = await insertEndpoint(db, { tenantId: "other" });
    const [waiting] = await insertDeliveries(db, healthy, 1);
    // Not excluded, they fill the window: nothing is claimed.
    expect(await claimDue(sql, request({ lookahead: 32 }))).toEqual([]);
    const claimed = await claimDue(sql, request({ lookahead: 32, exclude: [open] }));
    expect(claimed.map((d) => d.id)).toEqual([waiting]);
  });

  it("reads the due index, not the whole table, on a one-endpoint backlog with exclusions", async () => {
    const ep = await insertEndpoint(db, { tenantId: "bench", maxInFlight: 32 });
    await insertDeliveries(db, ep, 20_000);
    await db.query("ANALYZE delivery_queue");
    const plans = await plansOf((explaining) => claimDue(explaining, request({ exclude: ["ep_other"], excludeTenants: ["someone"], lookahead: 256 })));
    expect(plans[0]).toMatch(/Index Scan using delivery_queue_due_idx on delivery_queue q/);
    expect(plans[0]).not.toMatch(/Seq Scan on delivery_queue q(_\d+)? /);
  });

  it("finds an ordered endpoint's head through the endpoint index, never by scanning the queue", async () => {
    const ep = await insertEndpoint(db, { tenantId: "bench", ordered: true });
    await insertDeliveries(db, ep, 20_000);
    await db.query("ANALYZE delivery_queue");
    const plans = await plansOf((explaining) => claimDue(explaining, request({ lookahead: 256 })));
    expect(plans[0]).toMatch(/delivery_queue_endpoint_idx on delivery_queue p/);
    expect(plans[0]).not.toMatch(/Seq Scan on delivery_queue/);
    const [claimed, ...rest] = await claimDue(sql, request({ lookahead: 256 }));
    expect(rest).toEqual([]);
    const [head] = await db.query<{ id: string }>("SELECT delivery_id AS id FROM delivery_queue WHERE endpoint_id = $1 ORDER BY seq LIMIT 1", [ep]);
    expect(claimed!.id).toBe(head!.id);
  });

  it("claims one probe of a half-open circuit, records its lease end on the endpoint, and nothing more of it until then", async () => {
    const halfOpen = await insertEndpoint(db, { consecutiveFailures: 5, circuitOpenUntil: "now() - interval '1 second'" });
    await insertDeliveries(db, halfOpen, 5);
    const [probe, ...others] = await claimDue(sql, request());
    expect(others).toEqual([]);
    expect(probe).toMatchObject({ endpointId: halfOpen, probe: true });
    expect((await readEndpointHealth(db, halfOpen)).circuitProbeUntil!.getTime()).toBe(probe!.leaseUntil.getTime());
    expect(await claimDue(sql, request({ workerId: "w2" }))).toEqual([]);
  });

  it("takes no more of a tenant than its room, over all its endpoints, and none of a tenant without room", async () => {
    const a = await insertEndpoint(db, { tenantId: "busy" });
    const b = await insertEndpoint(db, { tenantId: "busy" });
    await insertDeliveries(db, a, 5);
    await insertDeliveries(db, b, 5);
    const full = await insertEndpoint(db, { tenantId: "full" });
    await insertDeliveries(db, full, 5);
    const claimed = await claimDue(
      sql,
      request({ tenants: new Map([["busy", { free: 3, newEndpointFree: 10 }]]), excludeTenants: ["full"] }),
    );
    expect(claimed).toHaveLength(3);
    expect(new Set(claimed.map((d) => d.tenantId))).toEqual(new Set(["busy"]));
  });

  it("gives an endpoint with no work here at most the new-endpoint share, whatever its own limit", async () => {
    const big = await insertEndpoint(db, { tenantId: "new", maxInFlight: 1000 });
    await insertDeliveries(db, big, 20);
    expect(await claimDue(sql, request({ newTenant: { free: 100, newEndpointFree: 4 } }))).toHaveLength(4);
    // An endpoint working here takes its lane's free room instead.
    expect(await claimDue(sql, request({ workerId: "w2", laneFree: new Map([[big, 7]]) }))).toHaveLength(7);
  });

  it("by id, takes only the given deliveries, under the same rules", async () => {
    const ep = await insertEndpoint(db);
    const ids = await insertDeliveries(db, ep, 4);
    const open = await insertEndpoint(db, { consecutiveFailures: 5, circuitOpenUntil: "now() + interval '1 hour'" });
    const [blocked] = await insertDeliveries(db, open, 1);
    const claimed = await claimDue(sql, request({ ids: [ids[1]!, ids[2]!, blocked!], limit: 3 }));
    expect(claimed.map((d) => d.id).sort()).toEqual([ids[1], ids[2]].sort());
  });
});

describe("claim: whether due rows were left for want of room", () => {
  it("says none when the window took every row it saw", async () => {
    const ep = await insertEndpoint(db);
    await insertDeliveries(db, ep, 3);
    const taken = await claim(sql, request({ lookahead: 32 }));
    expect([taken.claimed.length, taken.rowsLeft]).toEqual([3, false]);
    // Nothing more: nothing taken, nothing left.
    expect(await claim(sql, request({ lookahead: 32 }))).toEqual({ claimed: [], rowsLeft: false });
  });

  it("says some when an endpoint's room, a tenant's room or the row limit left rows, or the window was read whole", async () => {
    const ep = await insertEndpoint(db, { tenantId: "a" });
    await insertDeliveries(db, ep, 10);
    const byLane = await claim(sql, request({ laneFree: new Map([[ep, 3]]) }));
    expect([byLane.claimed.length, byLane.rowsLeft]).toEqual([3, true]);
    const byTenant = await claim(sql, request({ workerId: "w2", tenants: new Map([["a", { free: 2, newEndpointFree: 100 }]]) }));
    expect([byTenant.claimed.length, byTenant.rowsLeft]).toEqual([2, true]);
    const byLimit = await claim(sql, request({ workerId: "w3", limit: 2 }));
    expect([byLimit.claimed.length, byLimit.rowsLeft]).toEqual([2, true]);
    // Three rows are left; a window of two reads its window whole.
    const byWindow = await claim(sql, request({ workerId: "w4", limit: 2, lookahead: 2 }));
    expect([byWindow.claimed.length, byWindow.rowsLeft]).toEqual([2, true]);
    const rest = await claim(sql, request({ workerId: "w5", lookahead: 32 }));
    expect([rest.claimed.length, rest.rowsLeft]).toEqual([1, false]);
  });
});
