/**
 * The claimer on its own: what it decides to claim (by id, over the window,
 * how much, how wide), and its claims against a real PostgreSQL.
 */
import { describe, expect, it } from "vitest";
import { adaptLookahead, Claimer, type ClaimerOptions, LOOKAHEAD_MAX, LOOKAHEAD_MIN, MAX_TAKEN } from "../../src/delivery/claimer.js";
import { Lanes } from "../../src/delivery/lanes.js";
import type { ClaimedDelivery } from "../../src/domain/delivery/claimed-delivery.js";
import { sampleClaimed } from "../support/claimed.js";
import { captureLog } from "../support/log.js";
import { insertDeliveries, insertEndpoint } from "../support/rows.js";
import { useTestStore } from "../support/store.js";

const { db, sql } = useTestStore();

/** A claimer of a process with room for `maxInFlight` requests, whose claims land in its lanes and in `claimed`. */
function claimerOf(maxInFlight = 8, overrides: Partial<ClaimerOptions> = {}) {
  const lanes = new Lanes({ defaultMaxInFlight: 100, capacity: maxInFlight, circuitFailureThreshold: 5 });
  const claimed: ClaimedDelivery[] = [];
  const wakeAts: number[] = [];
  const claimer = new Claimer({
    sql,
    log: captureLog("warn").log,
    workerId: "w1",
    lanes,
    maxInFlight,
    claimBatchSize: 64,
    leaseMarginMs: 30_000,
    requestTimeoutMs: 15_000,
    endpointMaxInFlight: 100,
    circuitFailureThreshold: 5,
    bufferLow: (endpointId) => lanes.bufferLow(endpointId),
    onClaimed: (rows) => {
      claimed.push(...rows);
      for (const d of rows) lanes.add(d);
    },
    wakeAt: (at) => wakeAts.push(at),
    ...overrides,
  });
  return { claimer, lanes, claimed, wakeAts };
}

describe("Claimer: decisions", () => {
  it("plans published ids first, and nothing when nothing is wanted", () => {
    const { claimer } = claimerOf();
    void claimer.close();
    expect(claimer.plan(10)).toBeUndefined();
    claimer.take(["a", "b", "c"]);
    expect(claimer.plan(2)).toEqual({ ids: ["a", "b"] });
    expect(claimer.plan(2)).toEqual({ ids: ["c"] });
    expect(claimer.plan(2)).toBeUndefined();
  });

  it("alternates with the window while claims by id take under half of their ids", () => {
    const { claimer } = claimerOf();
    void claimer.close();
    claimer.take(["a", "b", "c", "d", "e", "f"]);
    const first = claimer.plan(2)!;
    // None of two taken: their endpoints are busy or blocked.
    claimer.claimed(first, 0, 2);
    expect(claimer.plan(2)).toEqual({ window: true });
    claimer.claimed({ window: true }, 0, 2);
    expect(claimer.plan(2)).toEqual({ ids: ["c", "d"] });
    // Both taken: no window is wanted.
    claimer.claimed({ ids: ["c", "d"] }, 2, 2);
    expect(claimer.plan(2)).toEqual({ ids: ["e", "f"] });
  });

  it("wants another window claim after a full one, and none after a partial one", () => {
    const { claimer } = claimerOf();
    void claimer.close();
    claimer.want();
    claimer.claimed(claimer.plan(16)!, 16, 16);
    expect(claimer.plan(16)).toEqual({ window: true });
    claimer.claimed({ window: true }, 3, 16);
    expect(claimer.plan(16)).toBeUndefined();
  });

  it("may have due work for a freed slot only while claims left some for want of room", () => {
    const { claimer } = claimerOf();
    void claimer.close();
    // Until a first claim says otherwise.
    expect(claimer.mayHaveDue()).toBe(true);
    claimer.claimed({ window: true }, 3, 16, false, false);
    expect(claimer.mayHaveDue()).toBe(false);
    // Rows left in the window (an endpoint or tenant at its room), endpoints
    // left out as full, a full claim, a claim by id that took fewer: each may have left some.
    for (const [claimed, rowsLeft, full] of [
      [3, true, false],
      [3, false, true],
      [16, false, false],
    ] as const) {
      claimer.claimed({ window: true }, claimed, 16, rowsLeft, full);
      expect(claimer.mayHaveDue()).toBe(true);
      claimer.plan(16);
      claimer.claimed({ window: true }, 0, 16, false, false);
      expect(claimer.mayHaveDue()).toBe(false);
    }
    claimer.claimed({ ids: ["a", "b"] }, 1, 16, false, false);
    expect(claimer.mayHaveDue()).toBe(true);
    claimer.plan(16);
    claimer.claimed({ window: true }, 0, 16, false, false);
    expect(claimer.mayHaveDue()).toBe(false);
    // Deliveries released (a circuit closed, leases given back).
    claimer.markLeftBehind();
    expect(claimer.mayHaveDue()).toBe(true);
  });

  it("leaves published ids past MAX_TAKEN to a window claim", () => {
    const { claimer } = claimerOf();
    void claimer.close();
    claimer.take(Array.from({ length: MAX_TAKEN + 5 }, (_, i) => `d${i}`));
    expect(claimer.waitingIds).toBe(MAX_TAKEN);
    // The window is wanted, but ids come first while they are not stalling.
    expect(claimer.plan(1)).toEqual({ ids: ["d0"] });
    claimer.claimed({ ids: ["d0"] }, 0, 1);
    expect(claimer.plan(1)).toEqual({ window: true });
  });

  it("grows the window when it gave what was wanted or over half its rows, shrinks it under a tenth, within bounds", () => {
    expect(adaptLookahead(128, 64, 64)).toBe(256);
    expect(adaptLookahead(128, 65, 100)).toBe(256);
    expect(adaptLookahead(128, 12, 100)).toBe(64);
    expect(adaptLookahead(128, 20, 100)).toBe(128);
    expect(adaptLookahead(LOOKAHEAD_MAX, 64, 64)).toBe(LOOKAHEAD_MAX);
    expect(adaptLookahead(LOOKAHEAD_MIN, 0, 64)).toBe(LOOKAHEAD_MIN);
  });

  it("makes a refill claim only while the asking endpoint's buffer is low, and a wanted one always", () => {
    const low = new Set<string>();
    const { claimer } = claimerOf(8, { bufferLow: (id) => low.has(id) });
    void claimer.close();
    claimer.refill("a");
    expect(claimer.plan(16)).toBeUndefined();
    // Not kept once passed over: the next freed slot asks again.
    low.add("a");
    expect(claimer.plan(16)).toBeUndefined();
    claimer.refill("b");
    expect(claimer.plan(16)).toBeUndefined();
    claimer.refill("a");
    expect(claimer.plan(16)).toEqual({ window: true });
    // Asked while low, refilled before its turn: no claim.
    claimer.refill("a");
    low.delete("a");
    expect(claimer.plan(16)).toBeUndefined();
    claimer.want();
    expect(claimer.plan(16)).toEqual({ window: true });
  });

  it("counts the room publish statements hold until they end", () => {
    const { claimer } = claimerOf(8);
    // Room for 8 requests and as many buffered, within 8 unwritten outcomes.
    expect(claimer.room()).toBe(8);
    const lease = claimer.beginLease()!;
    expect(lease.limit).toBe(8);
    expect(lease.workerId).toBe("w1");
    expect(claimer.room()).toBe(0);
    expect(claimer.beginLease()).toBeUndefined();
    claimer.endLease(lease);
    expect(claimer.room()).toBe(8);
  });

  it("gives each of the publish statements that may run at once its part of the room", () => {
    const { claimer } = claimerOf(8);
    // Two at once: half each, and the second is not left with nothing.
    const first = claimer.beginLease(2)!;
    expect(first.limit).toBe(4);
    const second = claimer.beginLease(2)!;
    expect(second.limit).toBe(4);
    expect(claimer.room()).toBe(0);
    expect(claimer.beginLease(2)).toBeUndefined();
    claimer.endLease(first);
    expect(claimer.beginLease(2)!.limit).toBe(4);
  });

  it("leaves no room while as many outcomes as requests may be in flight wait to be written", () => {
    const { claimer, lanes } = claimerOf(8);
    for (let i = 0; i < 8; i++) {
      lanes.add(sampleClaimed({ id: `d${i}`, maxInFlight: 4 }));
      expect(lanes.next()).toBeDefined();
      lanes.settle("ep", { durationMs: 1, success: true });
    }
    expect(lanes.unwritten).toBe(8);
    expect(claimer.room()).toBe(0);
    lanes.written("ep");
    expect(claimer.room()).toBe(1);
  });
});

describe("Claimer: claims", () => {
  it("claims published ids by primary key, then the rest over the window once asked", async () => {
    const ep = await insertEndpoint(db, { tenantId: "c1" });
    const ids = await insertDeliveries(db, ep, 3);
    // Room enough that the endpoint's fair share (64 / 2 / 2) takes them all.
    const { claimer, claimed, lanes } = claimerOf(64);
    claimer.take([ids[1]!]);
    await expect.poll(() => claimed.map((d) => d.id)).toEqual([ids[1]]);
    expect(lanes.buffered).toBe(1);
    claimer.want();
    await expect.poll(() => claimed.length).toBe(3);
    expect(new Set(claimed.map((d) => d.id))).toEqual(new Set(ids));
    await claimer.close();
  });

  it("claims nothing while publish statements hold its room, and within it once they end", async () => {
    const ep = await insertEndpoint(db, { tenantId: "c2" });
    await insertDeliveries(db, ep, 10);
    const { claimer, claimed } = claimerOf(64);
    const lease = claimer.beginLease()!;
    claimer.want();
    await expect.poll(() => claimer.room()).toBe(0);
    expect(claimed).toEqual([]);
    claimer.endLease(lease);
    claimer.want();
    await expect.poll(() => claimed.length).toBe(10);
    await claimer.close();
    expect(Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM delivery_queue WHERE locked_by = 'w1'"))[0]!.n)).toBe(10);
  });

  it("blocks a half-open circuit's endpoint in the lanes once its probe is claimed", async () => {
    const ep = await insertEndpoint(db, { tenantId: "c3", consecutiveFailures: 5 });
    await insertDeliveries(db, ep, 3);
    const { claimer, claimed, lanes } = claimerOf();
    claimer.want();
    await expect.poll(() => claimed.length).toBe(1);
    expect(claimed[0]!.probe).toBe(true);
    expect(lanes.capacity().exclude).toContain(ep);
    await claimer.close();
  });

  it("claims nothing once closed", async () => {
    const ep = await insertEndpoint(db, { tenantId: "c4" });
    await insertDeliveries(db, ep, 2);
    const { claimer, claimed } = claimerOf();
    await claimer.close();
    claimer.want();
    await claimer.close();
    expect(claimed).toEqual([]);
  });
});
